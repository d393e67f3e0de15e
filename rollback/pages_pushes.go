package rollback

import (
	"fmt"
	"net/http"
	"time"
)

// The history page: every push, newest first, and the 30-day graph.

// PushRow is one push in the history.
type PushRow struct {
	ID        string    `json:"id"`
	Revision  string    `json:"revision"`
	Who       string    `json:"who"`
	Created   time.Time `json:"created"`
	Finished  time.Time `json:"finished,omitzero"`
	Duration  string    `json:"duration"`
	Outcome   string    `json:"outcome"`
	State     State     `json:"state"`
	Phase     int       `json:"phase"`
	Phases    int       `json:"phases"`
	HostsDone int       `json:"hosts_done"`
	Reason    string    `json:"reason,omitempty"`
}

// DayBar is one day of the graph: pushes started and rollbacks finished
// that day, and where the bars are drawn.
type DayBar struct {
	Day       string  `json:"day"`
	Pushes    int     `json:"pushes"`
	Rollbacks int     `json:"rollbacks"`
	Today     bool    `json:"-"`
	Label     string  `json:"-"`
	X         float64 `json:"-"`
	RollX     float64 `json:"-"`
	CountY    float64 `json:"-"`
	PushY     float64 `json:"-"`
	PushH     float64 `json:"-"`
	RollY     float64 `json:"-"`
	RollH     float64 `json:"-"`
}

// PushesView is the history page.
type PushesView struct {
	Pushes    []PushRow `json:"pushes"`
	Days      []DayBar  `json:"days"`
	MaxPerDay int       `json:"-"`
}

// The graph's geometry, in SVG user units.
const (
	graphDays   = 30
	barStep     = 24.0
	barWidth    = 18.0
	graphTop    = 14.0
	graphBottom = 104.0
)

func (s *Server) pushesView(*http.Request) (string, any, error) {
	ps, err := s.C.Store.Pushes(0)
	if err != nil {
		return "", nil, fmt.Errorf("read pushes: %w", err)
	}
	v := PushesView{Pushes: make([]PushRow, 0, len(ps))}
	for _, p := range ps {
		v.Pushes = append(v.Pushes, pushRow(p))
	}
	v.Days, v.MaxPerDay = dayBars(ps, time.Now().UTC())
	return "Pushes", v, nil
}

func pushRow(p *Push) PushRow {
	end := p.Finished
	if end.IsZero() {
		end = time.Now().UTC()
	}
	return PushRow{
		ID: p.ID, Revision: p.Revision, Who: p.Who, Created: p.Created, Finished: p.Finished,
		Duration: span(end.Sub(p.Created)), Outcome: p.Outcome(), State: p.State,
		Phase: p.Phase + 1, Phases: len(p.Phases), HostsDone: p.HostsDone(), Reason: p.Reason,
	}
}

// dayBars counts the last 30 days: a push on the day it started, a
// rollback on the day it ended, when it was seen.
func dayBars(ps []*Push, now time.Time) ([]DayBar, int) {
	today := now.Truncate(24 * time.Hour)
	first := today.AddDate(0, 0, -(graphDays - 1))
	bars := make([]DayBar, graphDays)
	index := map[string]int{}
	for i := range bars {
		d := first.AddDate(0, 0, i)
		bars[i] = DayBar{Day: d.Format(time.DateOnly), Today: i == graphDays-1}
		if i%7 == 1 || bars[i].Today {
			bars[i].Label = d.Format("Jan 2")
		}
		index[bars[i].Day] = i
	}
	for _, p := range ps {
		if i, ok := index[p.Created.UTC().Format(time.DateOnly)]; ok {
			bars[i].Pushes++
		}
		if p.State == StateRolledBack {
			at := p.Finished
			if at.IsZero() {
				at = p.Created
			}
			if i, ok := index[at.UTC().Format(time.DateOnly)]; ok {
				bars[i].Rollbacks++
			}
		}
	}
	top := 1
	for _, b := range bars {
		top = max(top, b.Pushes, b.Rollbacks)
	}
	scale := (graphBottom - graphTop) / float64(top)
	for i := range bars {
		b := &bars[i]
		b.X = float64(i)*barStep + 30
		b.PushH = float64(b.Pushes) * scale
		b.PushY = graphBottom - b.PushH
		b.RollH = float64(b.Rollbacks) * scale
		b.RollY = graphBottom - b.RollH
		b.RollX = b.X + 10
		b.CountY = b.PushY - 3
	}
	return bars, top
}
