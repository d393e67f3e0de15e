package rollback

import (
	"github.com/immune-ops/immune/rollback/notify"
)

// tellState notifies what entering state s means for people on call.
func (c *Coordinator) tellState(p *Push, s State) {
	switch s {
	case StateRollingBack:
		c.tell(notify.RolledBack, p, p.Reason)
	case StateRolledBack:
		if p.Revert != nil && p.Revert.Error != "" {
			c.tell(notify.RevertFailed, p, p.Revert.Error)
		} else {
			c.tell(notify.Reverted, p, p.Reason)
		}
		c.tell(notify.Locked, p, p.Reason)
	case StateFailed:
		c.tell(notify.Failed, p, p.Reason)
	case StateLive:
		c.tell(notify.Live, p, "")
	case StateDeploying, StateWatching:
		if p.Phase > 0 {
			if v := p.Phases[p.Phase-1].Verdict; v != nil {
				c.tell(notify.Verdict, p, v.Reason)
			}
		}
	}
}

// tell sends one event about p; it never blocks.
func (c *Coordinator) tell(kind string, p *Push, reason string) {
	e := notify.Event{Kind: kind, Push: p.ID, Revision: p.Revision, Who: p.Who, Reason: reason}
	for _, cm := range p.Range {
		e.Commits = append(e.Commits, notify.Commit{SHA: cm.SHA, Author: cm.Author, Subject: cm.Subject})
	}
	if c.PageBase != "" {
		e.URL = c.PageBase + "/pushes/" + p.ID
	}
	c.Notify.Send(e)
}
