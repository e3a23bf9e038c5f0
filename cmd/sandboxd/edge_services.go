package main

import (
	"github.com/sandboxd/sandboxd/edge"
	"github.com/sandboxd/sandboxd/lifecycle"
)

// portServices tells the edge's starting page and its 502 "port closed" about the service
// behind a port (issue 14): lifecycle reads it from files, and the edge, which imports no
// lifecycle, gets it in its own type.
type portServices struct{ m *lifecycle.Manager }

func (p portServices) ServiceStatus(id string, port, tailBytes int) (edge.ServiceInfo, error) {
	ps, err := p.m.PortService(id, port, tailBytes)
	return edge.ServiceInfo{
		Name: ps.Name, Declared: ps.Declared, State: ps.State, StartedAt: ps.StartedAt, Restarts: ps.Restarts,
		LastExit: ps.LastExit, Error: ps.Error, Log: ps.Log, Tail: ps.Tail, TailCut: ps.TailCut, Secrets: ps.Secrets,
	}, err
}

var _ edge.Services = portServices{}
