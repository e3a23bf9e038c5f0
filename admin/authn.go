package admin

// Authenticate reports the name of the API token whose secret is secret, compared in
// constant time, for listeners that share the API's tokens (the E2B API takes them in
// X-API-Key). With no tokens configured every secret passes as "operator", as the API
// itself then serves everyone it is reachable by.
func (s *Server) Authenticate(secret string) (name string, ok bool) {
	s.tokensMu.RLock()
	tokens := s.Tokens
	s.tokensMu.RUnlock()
	if len(tokens) == 0 {
		return "operator", true
	}
	return match(tokens, secret)
}
