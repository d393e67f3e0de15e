package rollback

import (
	"github.com/immune-ops/immune/conf"
)

// fleet is the config in force.
func (c *Coordinator) fleet() *conf.Fleet {
	c.cfgMu.RLock()
	defer c.cfgMu.RUnlock()
	return c.Fleet
}

// agents is the client of the agents the config in force names.
func (c *Coordinator) agents() Agents {
	c.cfgMu.RLock()
	defer c.cfgMu.RUnlock()
	return c.Agents
}

// Reload puts a new config, and the agents' client built from it, in
// force. A push being driven keeps the config it began with, so that its
// limits and hosts do not change under its verdicts: the new config then
// waits for it to end, and deferred says so.
func (c *Coordinator) Reload(f *conf.Fleet, agents Agents) (deferred bool) {
	c.cfgMu.Lock()
	defer c.cfgMu.Unlock()
	if c.driving > 0 {
		c.pending = &pendingConfig{fleet: f, agents: agents}
		return true
	}
	c.Fleet, c.Agents, c.pending = f, agents, nil
	return false
}

// pendingConfig is a reloaded config waiting for a push to end.
type pendingConfig struct {
	fleet  *conf.Fleet
	agents Agents
}

// driveStarted and driveEnded bracket the driving of a push; the end of the
// last applies a config reloaded meanwhile.
func (c *Coordinator) driveStarted() {
	c.cfgMu.Lock()
	c.driving++
	c.cfgMu.Unlock()
}

func (c *Coordinator) driveEnded() {
	c.cfgMu.Lock()
	defer c.cfgMu.Unlock()
	c.driving--
	if c.driving == 0 && c.pending != nil {
		c.Fleet, c.Agents = c.pending.fleet, c.pending.agents
		c.pending = nil
		c.Log.Info("the push ended: the reloaded config is in force now")
	}
}

// Config is the config in force.
func (c *Coordinator) Config() *conf.Fleet { return c.fleet() }
