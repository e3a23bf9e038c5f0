module github.com/sandboxd/sandboxd

go 1.26.8

require (
	github.com/docker/docker v28.5.2+incompatible // indirect
	github.com/gorilla/mux v1.8.1 // indirect
	github.com/gorilla/websocket v1.5.3 // indirect
	github.com/mattn/go-sqlite3 v1.14.53 // indirect
	github.com/oklog/ulid/v2 v2.1.2 // indirect
	golang.org/x/sync v0.25.0 // indirect
)
