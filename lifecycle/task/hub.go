package task

// Readers of a task's events read the store, then wait on the task's channel, which its
// job closes (and replaces) each time it stores events, and closes for good when it ends.
// The channel belongs to the job, not to the reader or to the task id: the runner holds
// one per task it runs, and nothing for a task that has ended. A reader of a task this
// process does not run gets a nil channel and registers nothing, as nothing more will
// come (issue 10: an entry per finished task read was never removed).

// wait returns the channel closed when taskID has new events or ends, or nil when it does
// not run here.
func (r *Runner) wait(taskID string) <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.runs[taskID]
	if !ok {
		return nil
	}
	if j.more == nil {
		j.more = make(chan struct{})
	}
	return j.more
}

// notify wakes j's readers.
func (r *Runner) notify(j *job) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if j.more != nil {
		close(j.more)
		j.more = nil
	}
}

// attach makes j the run of its task: readers wait on it, Cancel finds it, Close waits for
// it. A closed runner attaches nothing. The caller launches or detaches j.
func (r *Runner) attach(j *job) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return false
	}
	r.runs[j.t.ID] = j
	r.wg.Add(1)
	return true
}

// detach ends j's run: its readers wake a last time, and nothing of it stays.
func (r *Runner) detach(j *job) {
	r.mu.Lock()
	delete(r.runs, j.t.ID)
	if j.more != nil {
		close(j.more)
		j.more = nil
	}
	r.mu.Unlock()
	close(j.done)
	r.wg.Done()
}
