package admin

import "net/http"

func (s *Server) terminal(w http.ResponseWriter, r *http.Request) error { return errNotImplemented }
