package e2e

import (
	"fmt"
	"math"
	"slices"
	"strings"
	"time"
)

// cdfSVG draws empirical cumulative distributions of latencies on a logarithmic time axis from
// 1 ms to 10 s.
func cdfSVG(title string, series map[string][]time.Duration) string {
	const w, h, left, right, top, bottom = 720.0, 390.0, 60.0, 20.0, 76.0, 50.0
	x := func(d time.Duration) float64 {
		ms := math.Max(float64(d.Microseconds())/1000, 1)
		return left + (math.Log10(ms)-0)/4*(w-left-right) // 1 ms .. 10 s
	}
	y := func(p float64) float64 { return top + (1-p)*(h-top-bottom) }
	var sb strings.Builder
	fmt.Fprintf(&sb, `<svg xmlns="http://www.w3.org/2000/svg" width="%.0f" height="%.0f" font-family="Helvetica, Arial, sans-serif" font-size="12">`+"\n", w, h)
	fmt.Fprintf(&sb, `<rect width="100%%" height="100%%" fill="white"/><text x="%.0f" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, title)
	for i, label := range []string{"1 ms", "10 ms", "100 ms", "1 s", "10 s"} {
		xx := left + float64(i)/4*(w-left-right)
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="middle">%s</text>`+"\n", xx, top, xx, h-bottom, xx, h-bottom+18, label)
	}
	for _, p := range []float64{0, 0.5, 1} {
		fmt.Fprintf(&sb, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/><text x="%.1f" y="%.1f" text-anchor="end">%.0f%%</text>`+"\n", left, y(p), w-right, y(p), left-6, y(p)+4, p*100)
	}
	fmt.Fprintf(&sb, `<text x="%.1f" y="%.1f" text-anchor="middle">latency (log scale)</text>`+"\n", (left+w-right)/2, h-10)
	colors := map[string]string{"regent": "#1f6fb4", "client-go": "#c0392b"}
	names := make([]string, 0, len(series))
	for k := range series {
		names = append(names, k)
	}
	slices.Sort(names)
	for i, name := range names {
		d := slices.Clone(series[name])
		slices.Sort(d)
		var pts []string
		for j, v := range d {
			pts = append(pts, fmt.Sprintf("%.1f,%.1f %.1f,%.1f", x(v), y(float64(j)/float64(len(d))), x(v), y(float64(j+1)/float64(len(d)))))
		}
		color := colors[name]
		fmt.Fprintf(&sb, `<polyline fill="none" stroke="%s" stroke-width="2" points="%s"/>`+"\n", color, strings.Join(pts, " "))
		// The legend sits under the title, above the plot area.
		lx, ly := left, 44+float64(i)*16
		fmt.Fprintf(&sb, `<rect x="%.0f" y="%.0f" width="14" height="4" fill="%s"/><text x="%.0f" y="%.0f">%s (n=%d, p50 %.1f ms)</text>`+"\n",
			lx, ly-4, color, lx+20, ly, name, len(d), quantile(d, 0.5))
	}
	sb.WriteString("</svg>\n")
	return sb.String()
}
