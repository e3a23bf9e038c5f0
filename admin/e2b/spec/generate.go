// Package spec holds the .proto definitions of E2B's envd protocol that sandboxd serves,
// and the Go code generated from them (commit both). Regenerate with `go generate
// ./admin/e2b/spec` after installing protoc (Debian: protobuf-compiler) and the two
// plugins at the versions go.mod pins:
//
//	go install google.golang.org/protobuf/cmd/protoc-gen-go
//	go install connectrpc.com/connect/cmd/protoc-gen-connect-go
package spec

//go:generate protoc -I envd --go_out=envd --go_opt=paths=source_relative --connect-go_out=envd --connect-go_opt=paths=source_relative process/process.proto filesystem/filesystem.proto
