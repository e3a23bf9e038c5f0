package initproto

import (
	"encoding/json"
	"fmt"
)

// MainService is the name of the service that runs the image's own command. It never comes
// from the services file, so the name is reserved there.
const MainService = "main"

// MaxServicesSize bounds how much of the services file sandbox-init reads: sandboxd writes
// a few KiB at most, anything larger is a mistake, not a config.
const MaxServicesSize = 4 << 20

// Services is the content of the services file, which sandboxd replaces by rename and
// sandbox-init applies live (on SIGHUP, or when it sees the file change):
//
//	{"services":[{"name":"web","cmd":["devserver"],"cwd":"workspace/app","env":{"PORT":"4000"},"port":4000}]}
type Services struct {
	Services []Service `json:"services"` // never null
}

// Service is one declared service.
type Service struct {
	Name string            `json:"name"`
	Cmd  []string          `json:"cmd"`           // argv; a shell line is ["bash","-lc","..."]
	Cwd  string            `json:"cwd,omitempty"` // relative to the home, absolute allowed; "" is the home
	Env  map[string]string `json:"env,omitempty"` // added to the login environment
	Port int               `json:"port,omitempty"`
}

// EncodeServices is the services file for list.
func EncodeServices(list []Service) ([]byte, error) {
	if list == nil {
		list = []Service{}
	}
	b, err := json.Marshal(Services{Services: list})
	if err != nil {
		return nil, fmt.Errorf("encode services: %w", err)
	}
	return b, nil
}

// DecodeServices parses a services file. It checks the format only; which services can run
// is the reader's business.
func DecodeServices(data []byte) ([]Service, error) {
	var f Services
	if err := json.Unmarshal(data, &f); err != nil {
		return nil, fmt.Errorf("decode services: %w", err)
	}
	return f.Services, nil
}
