package envd

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/sandboxd/sandboxd/lifecycle"
)

// UserHome is the home of E2B's default user, which sandboxd maps to the sandbox home.
const UserHome = "/home/user"

// checkUser accepts the users E2B names that sandboxd can be: its default user and the
// sandbox user. "" is the default.
func checkUser(name string) error {
	switch name {
	case "", "user", "sandbox":
		return nil
	case "root":
		return errors.New(`user "root" is not available: sandboxd runs every command as the sandbox user ("user")`)
	}
	return fmt.Errorf("user %q is not available: sandboxd runs every command as the sandbox user (\"user\")", name)
}

// basicUser is the user named by an RPC's "Authorization: Basic base64(user:)" header,
// the way E2B's SDKs choose one; "" when there is none.
func basicUser(h http.Header) (string, error) {
	v := h.Get("Authorization")
	if v == "" {
		return "", nil
	}
	scheme, cred, ok := strings.Cut(v, " ")
	if !ok || !strings.EqualFold(scheme, "basic") {
		return "", errors.New("the Authorization header must be Basic base64(user:)")
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(cred))
	if err != nil {
		return "", errors.New("the Authorization header must be Basic base64(user:)")
	}
	user, _, _ := strings.Cut(string(raw), ":")
	return user, nil
}

// resolve turns a path as an E2B client writes it into the path inside the container:
// "", "~" and relative paths are under the home, "~/x" too, and /home/user is the
// sandbox home.
func resolve(p string) (string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return "", errors.New("path contains NUL")
	}
	switch {
	case p == "" || p == "~":
		return lifecycle.Home, nil
	case strings.HasPrefix(p, "~/"):
		p = path.Join(lifecycle.Home, p[2:])
	case strings.HasPrefix(p, "~"):
		return "", fmt.Errorf("path %q names another user's home, which is not available", p)
	case !path.IsAbs(p):
		p = path.Join(lifecycle.Home, p)
	}
	p = path.Clean(p)
	if p == UserHome || strings.HasPrefix(p, UserHome+"/") {
		p = lifecycle.Home + p[len(UserHome):]
	}
	return p, nil
}

// show is the path an answer names: the sandbox home as E2B's /home/user.
func show(p string) string {
	if p == lifecycle.Home || strings.HasPrefix(p, lifecycle.Home+"/") {
		return UserHome + p[len(lifecycle.Home):]
	}
	return p
}

func parseUnix(s string) (time.Time, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, err
	}
	return time.Unix(n, 0), nil
}
