package fake

import "strings"

// Flags describes a CLI's options the way yargs and commander read them:
// --name value, --name=value, -x value for a short alias, bare booleans,
// positionals anywhere, and everything after "--" positional.
type Flags struct {
	Strings map[string]bool   // long names of options that take a value
	Bools   map[string]bool   // long names of options that take none
	Short   map[string]string // short name → long name
}

// Args is a parsed command line.
type Args struct {
	Values     map[string]string // the last value of each string option given
	Set        map[string]bool   // every option given
	Positional []string
}

// Parse reads args. An unknown option, or a value missing, is a Usage error.
func (f Flags) Parse(args []string) (Args, error) {
	a := Args{Values: map[string]string{}, Set: map[string]bool{}}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			a.Positional = append(a.Positional, args[i+1:]...)
			break
		}
		if arg == "-" || !strings.HasPrefix(arg, "-") {
			a.Positional = append(a.Positional, arg)
			continue
		}
		name, value, hasValue := strings.Cut(strings.TrimLeft(arg, "-"), "=")
		if !strings.HasPrefix(arg, "--") {
			long, ok := f.Short[name]
			if !ok || hasValue {
				return a, Usagef("unknown option '%s'", arg)
			}
			name = long
		}
		switch {
		case f.Strings[name]:
			if !hasValue {
				if i+1 >= len(args) {
					return a, Usagef("option '--%s <value>' argument missing", name)
				}
				i++
				value = args[i]
			}
			a.Values[name] = value
		case f.Bools[name]:
			if hasValue && value != "true" && value != "false" {
				return a, Usagef("option '--%s' takes no value", name)
			}
			if value == "false" {
				continue
			}
		default:
			return a, Usagef("unknown option '%s'", arg)
		}
		a.Set[name] = true
	}
	return a, nil
}
