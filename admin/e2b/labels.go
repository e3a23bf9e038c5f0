package e2b

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
)

// E2B's metadata is stored as the sandbox's labels, so the admin API and its label filters
// see it. A metadata key that is a label key maps to itself; any other (upper case, a
// "/", more than 63 bytes of room...) is escaped under "e2b.m.": bytes other than a-z,
// 0-9, "_" and "-" become "." and two hex digits ("userId" is "e2b.m.user.49d"). Keys
// under "e2b." are sandboxd's own (below) and always escaped, so they cannot collide.
const (
	labelManaged   = "e2b.managed"    // "1": made through this API
	labelTemplate  = "e2b.template"   // the templateID asked for
	labelTimeout   = "e2b.timeout"    // the timeout in seconds, for a resume
	labelOnTimeout = "e2b.on-timeout" // "kill" or "pause"
	escapedPrefix  = "e2b.m."
)

var labelKey = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,62}$`)

// maxMetadata bounds the metadata of one sandbox.
const maxMetadata = 64

// metadataLabel is the label key of a metadata key.
func metadataLabel(k string) (string, error) {
	if labelKey.MatchString(k) && !strings.HasPrefix(k, "e2b.") {
		return k, nil
	}
	var b strings.Builder
	b.WriteString(escapedPrefix)
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, ".%02x", c)
		}
	}
	if k == "" || b.Len() > 63 {
		return "", errorf(http.StatusBadRequest, "metadata key %q is empty or too long (at most 63 bytes once escaped)", k)
	}
	return b.String(), nil
}

// metadataKey is the metadata key of a label, or ok false for sandboxd's own labels.
func metadataKey(label string) (string, bool) {
	if !strings.HasPrefix(label, "e2b.") {
		return label, true
	}
	rest, ok := strings.CutPrefix(label, escapedPrefix)
	if !ok {
		return "", false
	}
	var b strings.Builder
	for i := 0; i < len(rest); i++ {
		if rest[i] != '.' {
			b.WriteByte(rest[i])
			continue
		}
		if i+2 >= len(rest) {
			return "", false
		}
		n, err := strconv.ParseUint(rest[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(n))
		i += 2
	}
	return b.String(), true
}

// metadataLabels turns metadata into labels, refusing what labels cannot hold.
func metadataLabels(md map[string]string) (map[string]string, error) {
	if len(md) > maxMetadata {
		return nil, errorf(http.StatusBadRequest, "metadata may have at most %d keys", maxMetadata)
	}
	out := make(map[string]string, len(md))
	for k, v := range md {
		lk, err := metadataLabel(k)
		if err != nil {
			return nil, err
		}
		if len(v) > 256 || strings.ContainsAny(v, "\x00\n\r") {
			return nil, errorf(http.StatusBadRequest, "metadata %q: the value must be at most 256 bytes on one line", k)
		}
		out[lk] = v
	}
	return out, nil
}

// labelsMetadata is the metadata a sandbox's labels hold.
func labelsMetadata(labels map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range labels {
		if mk, ok := metadataKey(k); ok {
			out[mk] = v
		}
	}
	return out
}
