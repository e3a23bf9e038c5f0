package admin

import "net/http"

func (s *Server) getServices(w http.ResponseWriter, r *http.Request) error { return errNotImplemented }
func (s *Server) putServices(w http.ResponseWriter, r *http.Request) error { return errNotImplemented }
