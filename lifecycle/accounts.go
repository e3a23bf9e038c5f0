package lifecycle

import (
	"bufio"
	"bytes"
	"strconv"
	"strings"
	"sync"
)

// Inside every sandbox its uid is the user "sandbox" (home /home/sandbox) and its gid the
// group "sandbox": sandboxd writes /etc/passwd and /etc/group into the sandbox's run dir and
// mounts them read-only over the image's, so whoami, id, git, npm, python and ssh find a
// name and a home for a uid the image has never heard of (issue 12). The image's other
// entries are kept; an entry of the image's that names "sandbox" or holds the uid is
// replaced.

// Names of the account files in the run dir, and where they are mounted.
const (
	passwdFile = "passwd"
	groupFile  = "group"
)

// maxAccountFile bounds what is read of an image's /etc/passwd or /etc/group: the image
// may be anyone's.
const maxAccountFile = 1 << 20

// accountFiles are an image's /etc/passwd and /etc/group.
type accountFiles struct {
	passwd, group []byte
}

// minimalAccounts stand in for an image without account files (a FROM scratch image), or
// until the image's have been read.
var minimalAccounts = accountFiles{
	passwd: []byte("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"),
	group:  []byte("root:x:0:\nnogroup:x:65534:\n"),
}

// sandboxAccounts returns the account files for a sandbox whose uid and gid are uid.
func sandboxAccounts(img accountFiles, uid int) (passwd, group []byte) {
	u := strconv.Itoa(uid)
	shell, named := "/bin/sh", false
	var pw bytes.Buffer
	eachLine(img.passwd, func(line string) {
		f := strings.Split(line, ":")
		if len(f) != 7 {
			return
		}
		if f[0] == "sandbox" || f[2] == u || f[5] == Home {
			// The image's sandbox user's shell (bash in the base image) is kept; an entry
			// that only clashes gives one when there is no such user.
			if f[6] != "" && (f[0] == "sandbox" || !named) {
				shell = f[6]
			}
			named = named || f[0] == "sandbox"
			return
		}
		pw.WriteString(line + "\n")
	})
	pw.WriteString("sandbox:x:" + u + ":" + u + ":sandbox:" + Home + ":" + shell + "\n")
	var gr bytes.Buffer
	eachLine(img.group, func(line string) {
		f := strings.Split(line, ":")
		if len(f) != 4 || f[0] == "sandbox" || f[2] == u {
			return
		}
		gr.WriteString(line + "\n")
	})
	gr.WriteString("sandbox:x:" + u + ":\n")
	return pw.Bytes(), gr.Bytes()
}

// eachLine calls fn with each line of b that is neither empty nor a comment.
func eachLine(b []byte, fn func(string)) {
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 4096), 64<<10)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		if line == "" || strings.HasPrefix(line, "#") || strings.ContainsRune(line, 0) {
			continue
		}
		fn(line)
	}
}

// accountCache keeps the account files of images by image id: they are read from the
// first container made from an image, and a rebuilt image has a new id.
type accountCache struct {
	mu sync.Mutex
	m  map[string]accountFiles
}

// maxCachedImages bounds the cache; past it, the cache starts over.
const maxCachedImages = 64

func (c *accountCache) get(imageID string) (accountFiles, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	a, ok := c.m[imageID]
	return a, ok
}

func (c *accountCache) put(imageID string, a accountFiles) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedImages {
		c.m = map[string]accountFiles{}
	}
	c.m[imageID] = a
}
