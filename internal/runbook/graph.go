package runbook

import "slices"

// Graph is a run laid out as a step graph for the console: the main steps
// in columns by depth (a step sits right of every step it needs), each
// step's on_failure steps below it, and the finally steps in a last
// column. Coordinates are SVG user units.
type Graph struct {
	Width, Height int
	Nodes         []GraphNode
	Edges         []GraphEdge
}

// GraphNode is one step.
type GraphNode struct {
	ID, Phase, Kind, Provider string
	// State is the step's state in the run; "" for an on_failure step that
	// has not been needed.
	State       string
	OperationID string
	Gate        bool
	X, Y, W, H  int
}

// GraphEdge joins two steps: Style is "needs", "on_failure" or "finally".
type GraphEdge struct {
	From, To       string
	X1, Y1, X2, Y2 int
	Style          string
}

// Graph layout sizes.
const (
	nodeW, nodeH = 210, 62
	gapX, gapY   = 56, 22
	margin       = 12
)

// Graph lays run out along rb's steps.
func (rb *Runbook) Graph(run *Run) *Graph {
	byID := map[string]RunStep{}
	for _, s := range run.Steps {
		byID[s.ID] = s
	}
	g := &Graph{}
	add := func(s Step, phase string, col, row int) {
		n := GraphNode{ID: s.ID, Phase: phase, Kind: s.Kind, Provider: s.Provider, Gate: s.Gate != nil,
			X: margin + col*(nodeW+gapX), Y: margin + row*(nodeH+gapY), W: nodeW, H: nodeH}
		if st, ok := byID[s.ID]; ok {
			n.State, n.OperationID = st.State, st.OperationID
		}
		g.Nodes = append(g.Nodes, n)
	}
	// Depth: the longest chain of needs before a step.
	depth := map[string]int{}
	var depthOf func(id string) int
	depthOf = func(id string) int {
		if d, ok := depth[id]; ok {
			return d
		}
		d := 0
		for _, n := range rb.needs[id] {
			d = max(d, depthOf(n)+1)
		}
		depth[id] = d
		return d
	}
	rows := map[int]int{} // column -> next free row
	cols := 0
	for _, s := range rb.Steps {
		c := depthOf(s.ID)
		cols = max(cols, c+1)
		add(s, PhaseStep, c, rows[c])
		rows[c]++
	}
	mainRows := 0
	for _, r := range rows {
		mainRows = max(mainRows, r)
	}
	// Compensation under the main band, in its step's column.
	compRows := map[int]int{}
	for _, s := range rb.Steps {
		c := depthOf(s.ID)
		for _, f := range s.OnFailure {
			add(f, PhaseOnFailure, c, mainRows+compRows[c])
			compRows[c]++
		}
	}
	bottom := mainRows
	for _, r := range compRows {
		bottom = max(bottom, mainRows+r)
	}
	for i, f := range rb.Finally {
		add(f, PhaseFinally, cols, i)
	}
	index := map[string]int{}
	for i, n := range g.Nodes {
		index[n.ID] = i
	}
	node := func(id string) GraphNode { return g.Nodes[index[id]] }
	edge := func(from, to, style string) {
		a, b := node(from), node(to)
		e := GraphEdge{From: from, To: to, Style: style}
		if style == PhaseOnFailure {
			e.X1, e.Y1, e.X2, e.Y2 = a.X+a.W/2, a.Y+a.H, b.X+b.W/2, b.Y
		} else {
			e.X1, e.Y1, e.X2, e.Y2 = a.X+a.W, a.Y+a.H/2, b.X, b.Y+b.H/2
		}
		g.Edges = append(g.Edges, e)
	}
	var sinks []string
	for _, s := range rb.Steps {
		for _, n := range rb.needs[s.ID] {
			edge(n, s.ID, "needs")
		}
		if !slices.ContainsFunc(rb.Steps, func(o Step) bool { return slices.Contains(rb.needs[o.ID], s.ID) }) {
			sinks = append(sinks, s.ID)
		}
		prev := s.ID
		for _, f := range s.OnFailure {
			edge(prev, f.ID, PhaseOnFailure)
			prev = f.ID
		}
	}
	for i, f := range rb.Finally {
		if i == 0 {
			for _, s := range sinks {
				edge(s, f.ID, PhaseFinally)
			}
			continue
		}
		a, b := node(rb.Finally[i-1].ID), node(f.ID)
		g.Edges = append(g.Edges, GraphEdge{From: a.ID, To: b.ID, Style: PhaseFinally, X1: a.X + a.W/2, Y1: a.Y + a.H, X2: b.X + b.W/2, Y2: b.Y})
	}
	w := cols
	if len(rb.Finally) > 0 {
		w++
	}
	g.Width = 2*margin + w*nodeW + (w-1)*gapX
	g.Height = 2*margin + max(bottom, len(rb.Finally))*(nodeH+gapY) - gapY
	return g
}

// Graph lays a run out (see Runbook.Graph) along the runbook it follows.
func (c *Coordinator) Graph(run *Run) (*Graph, error) {
	rb, err := c.runbookOf(run)
	if err != nil {
		return nil, err
	}
	return rb.Graph(run), nil
}
