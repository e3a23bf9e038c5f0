package admin

import "net/http"

func (s *Server) getExec(w http.ResponseWriter, r *http.Request) error { return errNotImplemented }
func (s *Server) getExecOutput(w http.ResponseWriter, r *http.Request) error {
	return errNotImplemented
}
