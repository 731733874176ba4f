package report

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Groupings the text report can lead with.
const (
	ByModel    = "model"
	ByProvider = "provider"
	ByApp      = "app"
)

// TextOptions shape the plain-text report.
type TextOptions struct {
	// By is the grouping of the calls and tokens tables: ByModel
	// (default), ByProvider or ByApp.
	By string
	// Top caps the rows of each table (default 20; negative: all).
	Top int
}

// WriteText writes res as aligned plain-text tables for a person at a
// terminal.
func WriteText(w io.Writer, res *Result, opts TextOptions) error {
	if opts.Top == 0 {
		opts.Top = 20
	}
	switch opts.By {
	case ByModel, ByProvider, ByApp, "":
	default:
		return fmt.Errorf("group by %q: want %s, %s or %s", opts.By, ByModel, ByProvider, ByApp)
	}
	tw := &textWriter{w: w, top: opts.Top}
	tw.summary(res)

	var rows []Group
	var keys []string
	var what string
	switch opts.By {
	case ByProvider:
		rows, keys, what = res.Providers, []string{"PROVIDER"}, "provider"
	case ByApp:
		rows, keys, what = res.Apps, []string{"APP"}, "application"
	default:
		rows, keys, what = res.Models, []string{"PROVIDER", "MODEL"}, "provider and model"
	}
	key := func(g *Group) []string {
		switch opts.By {
		case ByProvider:
			return []string{g.Provider}
		case ByApp:
			return []string{g.App}
		}
		return []string{g.Provider, g.Model}
	}
	if len(rows) > 0 {
		tw.callsTable("Calls by "+what, keys, rows, key, &res.Total)
		tw.tokensTable("Tokens and estimated cost by "+what, keys, rows, key, &res.Total)
		tw.errorsTable("Errors by "+what, keys, rows, key)
	}
	if opts.By != ByApp && len(res.Apps) > 0 {
		tw.appsTable(res.Apps)
	}
	tw.conversationsTable(res)
	if len(res.Tools) > 0 {
		tw.toolsTable(res.Tools)
	}
	if len(res.Embeddings) > 0 {
		tw.embeddingsTable(res.Embeddings)
	}
	tw.otherEvents(res.EventTypes)
	tw.badLines(res)
	return tw.err
}

type textWriter struct {
	w   io.Writer
	top int
	err error
}

func (t *textWriter) printf(format string, args ...any) {
	if t.err == nil {
		_, t.err = fmt.Fprintf(t.w, format, args...)
	}
}

func (t *textWriter) summary(res *Result) {
	if res.First != nil {
		t.printf("AI activity from %s to %s (%s)\n", stamp(*res.First), stamp(*res.Last), span(res.Last.Sub(*res.First)))
	} else {
		t.printf("No events\n")
	}
	if res.Conversation != "" {
		t.printf("Conversation %s only\n", res.Conversation)
	}
	filtered := ""
	switch {
	case res.Filtered > 0 && res.Conversation != "":
		filtered = fmt.Sprintf(", %s outside --since/--until or the conversation", count(res.Filtered))
	case res.Filtered > 0:
		filtered = fmt.Sprintf(", %s outside --since/--until", count(res.Filtered))
	}
	t.printf("%s in %s (%s not OISP events%s)\n", plural(res.Events, "event"), plural(res.Lines, "line"), count(res.BadLines), filtered)
	tot := &res.Total
	t.printf("%s: %s failed, %s with no response seen, %s streamed\n",
		plural(tot.Calls, "call"), count(tot.Errors), count(tot.NoResponse), count(tot.Streamed))
	switch {
	case tot.Priced > 0:
		t.printf("Tokens: %s in, %s out; estimated cost %s (the events' own estimates%s)\n",
			count(tot.InputTokens), count(tot.OutputTokens), usd(tot.CostUSD), unpricedNote(tot))
	case tot.Calls > 0:
		t.printf("Tokens: %s in, %s out; cost unknown (no call carried a cost estimate)\n",
			count(tot.InputTokens), count(tot.OutputTokens))
	}
	if res.PendingEvicted > 0 {
		t.printf("%s requests were given up on as unanswered: too many waited for a response at once\n", count(res.PendingEvicted))
	}
	if o := res.Overflow; o.Models+o.Apps+o.Tools+o.Embeddings+o.Conversations > 0 {
		t.printf("Some tables reached their cap; later groups are in %q rows\n", OtherGroup)
	}
}

func unpricedNote(s *Stats) string {
	if s.Unpriced == 0 {
		return ""
	}
	return fmt.Sprintf("; %s of %s calls unpriced", count(s.Unpriced), count(s.Calls))
}

func (t *textWriter) callsTable(title string, keys []string, rows []Group, key func(*Group) []string, total *Stats) {
	tb := newTable(append(slices.Clone(keys), "CALLS", "FAILED", "NO RESPONSE", "STREAMED", "LATENCY P50/P95", "TTFT P50/P95"), len(keys))
	line := func(k []string, s *Stats) {
		tb.add(append(slices.Clone(k), count(s.Calls), count(s.Errors), count(s.NoResponse),
			share(s.Streamed, s.Calls), pair(s.Latency), pair(s.TTFT)))
	}
	more := t.each(len(rows), func(i int) { line(key(&rows[i]), &rows[i].Stats) })
	if len(rows) > 1 {
		line(totalKey(len(keys)), total)
	}
	t.table(title, tb, more)
}

func (t *textWriter) tokensTable(title string, keys []string, rows []Group, key func(*Group) []string, total *Stats) {
	tb := newTable(append(slices.Clone(keys), "INPUT", "OUTPUT", "CACHE READ", "CACHE HIT", "CACHE WRITE", "REASONING", "COST (EST.)", "UNPRICED"), len(keys))
	line := func(k []string, s *Stats) {
		hit := "-"
		if s.CacheHitRate != nil {
			hit = strconv.FormatFloat(100**s.CacheHitRate, 'f', 1, 64) + "%"
		}
		unpriced := "0"
		if s.Unpriced > 0 {
			unpriced = fmt.Sprintf("%s of %s", count(s.Unpriced), count(s.Calls))
		}
		tb.add(append(slices.Clone(k), count(s.InputTokens), count(s.OutputTokens), count(s.CacheReadTokens), hit,
			count(s.CacheCreationTokens), count(s.ReasoningTokens), cost(s), unpriced))
	}
	more := t.each(len(rows), func(i int) { line(key(&rows[i]), &rows[i].Stats) })
	if len(rows) > 1 {
		line(totalKey(len(keys)), total)
	}
	t.table(title, tb, more)
}

func (t *textWriter) errorsTable(title string, keys []string, rows []Group, key func(*Group) []string) {
	type errRow struct {
		key []string
		typ string
		n   int64
	}
	var errs []errRow
	for i := range rows {
		for typ, n := range rows[i].ErrorTypes {
			errs = append(errs, errRow{key(&rows[i]), typ, n})
		}
	}
	if len(errs) == 0 {
		return
	}
	slices.SortFunc(errs, func(a, b errRow) int {
		return cmp.Or(cmp.Compare(b.n, a.n), slices.Compare(a.key, b.key), cmp.Compare(a.typ, b.typ))
	})
	tb := newTable(append(slices.Clone(keys), "ERROR", "COUNT"), len(keys)+1)
	more := t.each(len(errs), func(i int) { tb.add(append(slices.Clone(errs[i].key), errs[i].typ, count(errs[i].n))) })
	t.table(title, tb, more)
}

func (t *textWriter) appsTable(apps []Group) {
	tb := newTable([]string{"APP", "CALLS", "FAILED", "INPUT", "OUTPUT", "COST (EST.)", "UNPRICED"}, 1)
	more := t.each(len(apps), func(i int) {
		s := &apps[i].Stats
		unpriced := "0"
		if s.Unpriced > 0 {
			unpriced = fmt.Sprintf("%s of %s", count(s.Unpriced), count(s.Calls))
		}
		tb.add([]string{apps[i].App, count(s.Calls), count(s.Errors), count(s.InputTokens), count(s.OutputTokens), cost(s), unpriced})
	})
	t.table("By application (process)", tb, more)
}

func (t *textWriter) conversationsTable(res *Result) {
	convs := res.Conversations
	if len(convs) == 0 {
		if res.CallsWithoutConversation > 0 {
			t.printf("\nNo conversations: no call carried a conversation_id\n")
		}
		return
	}
	tb := newTable([]string{"CONVERSATION", "APP", "MODEL", "CALLS", "FAILED", "INPUT", "OUTPUT", "CACHE READ",
		"COST (EST.)", "UNPRICED", "TOOL CALLS", "FIRST", "LAST", "DURATION"}, 3)
	more := t.each(len(convs), func(i int) {
		c := &convs[i]
		model := c.Provider + " " + c.Model
		if c.OtherModels > 0 {
			model += fmt.Sprintf(" +%d", c.OtherModels)
		}
		cost, unpriced := "-", "0"
		if c.Priced > 0 {
			cost = usd(c.CostUSD)
		}
		if c.Unpriced > 0 {
			unpriced = fmt.Sprintf("%s of %s", count(c.Unpriced), count(c.Calls))
		}
		last := stamp(c.Last)
		if c.Last.UTC().Format(time.DateOnly) == c.First.UTC().Format(time.DateOnly) {
			last = c.Last.UTC().Format("15:04:05.000Z") // the same day as FIRST
		}
		tb.add([]string{c.ID, c.App, model, count(c.Calls), count(c.Errors), count(c.InputTokens), count(c.OutputTokens),
			count(c.CacheReadTokens), cost, unpriced, count(c.ToolCalls), stamp(c.First), last, span(c.Last.Sub(c.First))})
	})
	t.table("Top conversations by estimated cost, then tokens", tb, more)
	if res.CallsWithoutConversation > 0 {
		t.printf("Calls with no conversation_id, in no row above: %s\n", count(res.CallsWithoutConversation))
	}
}

func (t *textWriter) toolsTable(tools []Tool) {
	tb := newTable([]string{"TOOL", "CALLS", "RESULTS", "FAILED"}, 1)
	more := t.each(len(tools), func(i int) {
		tb.add([]string{tools[i].Name, count(tools[i].Calls), count(tools[i].Results), count(tools[i].FailedResults)})
	})
	t.table("Tools the models called (agent.tool_call) and their results", tb, more)
}

func (t *textWriter) embeddingsTable(embs []Embedding) {
	tb := newTable([]string{"PROVIDER", "MODEL", "EMBEDDINGS", "FAILED", "INPUTS", "VECTORS", "TOKENS"}, 2)
	more := t.each(len(embs), func(i int) {
		e := &embs[i]
		tb.add([]string{e.Provider, e.Model, count(e.Events), count(e.Errors), count(e.Inputs), count(e.Vectors), count(e.Tokens)})
	})
	t.table("Embeddings (also counted as calls above)", tb, more)
}

func (t *textWriter) otherEvents(types map[string]int64) {
	var parts []string
	for typ, n := range types {
		if !readsData(typ) {
			parts = append(parts, fmt.Sprintf("%s %s", typ, count(n)))
		}
	}
	if len(parts) == 0 {
		return
	}
	slices.Sort(parts)
	t.printf("\nOther events: %s\n", strings.Join(parts, ", "))
}

func (t *textWriter) badLines(res *Result) {
	if res.BadLines == 0 {
		return
	}
	if res.BadLines == 1 {
		t.printf("\n1 line is not an OISP event")
	} else {
		t.printf("\n%s lines are not OISP events", count(res.BadLines))
	}
	if int64(len(res.BadLineSamples)) < res.BadLines {
		t.printf("; the first %d", len(res.BadLineSamples))
	}
	t.printf(":\n")
	for _, e := range res.BadLineSamples {
		t.printf("  %s\n", e.Error())
	}
}

// each calls row for the first rows up to the cap and returns how many
// were left out.
func (t *textWriter) each(n int, row func(i int)) int {
	shown := n
	if t.top > 0 && shown > t.top {
		shown = t.top
	}
	for i := 0; i < shown; i++ {
		row(i)
	}
	return n - shown
}

func (t *textWriter) table(title string, tb *table, more int) {
	t.printf("\n%s\n", title)
	if t.err == nil {
		t.err = tb.write(t.w)
	}
	if more > 0 {
		rows := "rows"
		if more == 1 {
			rows = "row"
		}
		t.printf("… %s more %s (--top -1 shows all)\n", count(int64(more)), rows)
	}
}

func totalKey(n int) []string {
	k := make([]string, n)
	k[0] = "TOTAL"
	return k
}

// table aligns columns: the first textCols left, numbers right.
type table struct {
	rows     [][]string
	textCols int
}

func newTable(header []string, textCols int) *table {
	return &table{rows: [][]string{header}, textCols: textCols}
}

func (tb *table) add(row []string) { tb.rows = append(tb.rows, row) }

func (tb *table) write(w io.Writer) error {
	widths := make([]int, len(tb.rows[0]))
	for _, row := range tb.rows {
		for i, c := range row {
			widths[i] = max(widths[i], utf8.RuneCountInString(c))
		}
	}
	var b strings.Builder
	for _, row := range tb.rows {
		b.WriteString("  ")
		for i, c := range row {
			pad := strings.Repeat(" ", widths[i]-utf8.RuneCountInString(c))
			if i > 0 {
				b.WriteString("  ")
			}
			if i < tb.textCols {
				b.WriteString(c)
				if i < len(row)-1 {
					b.WriteString(pad)
				}
			} else {
				b.WriteString(pad)
				b.WriteString(c)
			}
		}
		b.WriteByte('\n')
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// plural says "1 call", "2 calls".
func plural(n int64, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return count(n) + " " + noun + "s"
}

// count formats n with thousands separators.
func count(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func share(part, whole int64) string {
	if whole == 0 {
		return "-"
	}
	return strconv.FormatInt((100*part+whole/2)/whole, 10) + "%"
}

func pair(p *Percentiles) string {
	if p == nil {
		return "-"
	}
	return fmt.Sprintf("%s/%s ms", count(p.P50), count(p.P95))
}

// cost is a group's estimated cost, "-" when none of its calls had one:
// unknown, not $0.
func cost(s *Stats) string {
	if s.Priced == 0 {
		return "-"
	}
	return usd(s.CostUSD)
}

// usd shows small costs with enough digits to be seen.
func usd(v float64) string {
	switch {
	case v == 0:
		return "$0"
	case v >= 100:
		return "$" + strconv.FormatFloat(v, 'f', 2, 64)
	case v >= 0.01:
		return "$" + strconv.FormatFloat(v, 'f', 4, 64)
	}
	return "$" + strconv.FormatFloat(v, 'f', 6, 64)
}

func stamp(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05.000Z") }

func span(d time.Duration) string {
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%.1f days", d.Hours()/24)
	case d >= time.Hour:
		return d.Round(time.Minute).String()
	case d >= time.Second:
		return d.Round(time.Second).String()
	}
	return d.String()
}
