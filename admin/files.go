package admin

import "net/http"

func (s *Server) getFiles(w http.ResponseWriter, r *http.Request) error   { return errNotImplemented }
func (s *Server) putFile(w http.ResponseWriter, r *http.Request) error    { return errNotImplemented }
func (s *Server) deleteFile(w http.ResponseWriter, r *http.Request) error { return errNotImplemented }
func (s *Server) readFile(w http.ResponseWriter, r *http.Request) error   { return errNotImplemented }
func (s *Server) moveFile(w http.ResponseWriter, r *http.Request) error   { return errNotImplemented }
