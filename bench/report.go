package main

import (
	"fmt"
	"io"
)

func printTable(w io.Writer, r *results) {
	fmt.Fprintf(w, "\nccmirror vs the manual procedure — %s\nfake GitHub: %s/s per connection, +%s latency\n\n",
		r.Machine, mib(r.Bandwidth), r.Latency)
	for i, l := range r.Limits {
		if i < len(r.Scaling) {
			fmt.Fprintf(w, "limits at %s: %s\n", mib(r.Scaling[i].Size), l)
		}
	}
	fmt.Fprintf(w, "rows measured several times are interleaved (A B A B …): median, then min–max\n\n")
	fmt.Fprintf(w, "%-8s %-19s %-24s %9s %-13s %9s %-13s %7s %-13s %8s %10s %10s %9s %9s\n",
		"size", "row", "baseline", "ccmirror", "min–max", "baseline", "min–max", "ratio", "target", "x limit", "bytes", "base bytes", "RSS", "base RSS")
	for _, x := range r.Rows {
		target := "-"
		if x.Target > 0 {
			target = fmt.Sprintf("%.2fx ok", x.Target)
			if x.Ratio > x.Target {
				target = fmt.Sprintf("%.2fx MISSED", x.Target)
			}
		}
		if x.Seconds == 0 && x.BaseSeconds == 0 { // a skipped row
			fmt.Fprintf(w, "%-8s %-19s %-24s %s\n", mib(x.Size), x.Name, x.Baseline, x.Note)
			continue
		}
		xl := "-"
		if x.XLimit > 0 {
			xl = fmt.Sprintf("%.2fx", x.XLimit)
		}
		fmt.Fprintf(w, "%-8s %-19s %-24s %8.2fs %-13s %8.2fs %-13s %6.3fx %-13s %8s %10s %10s %9s %9s\n",
			mib(x.Size), x.Name, x.Baseline, x.Seconds, span(x.Min, x.Max), x.BaseSeconds, span(x.BaseMin, x.BaseMax), x.Ratio, target, xl,
			mib(x.Bytes), mib(x.BaseBytes), mib(x.RSS), mib(x.BaseRSS))
		if x.Note != "" {
			fmt.Fprintf(w, "%-8s   %s\n", "", x.Note)
		}
	}
	fmt.Fprintf(w, "\nscaling (time should grow linearly with bytes, memory stay flat; peak RSS target 64 MiB)\n")
	fmt.Fprintf(w, "%-9s %11s %9s %10s %11s %9s %10s %14s\n",
		"size", "cold fetch", "s/GiB", "RSS", "install", "s/GiB", "RSS", "max RSS (all)")
	for _, x := range r.Scaling {
		rss := "ok"
		if x.MaxRSS > 64<<20 {
			rss = "MISSED"
		}
		fmt.Fprintf(w, "%-9s %10.2fs %8.2fs %10s %10.2fs %8.2fs %10s %11s %s\n",
			mib(x.Size), x.FetchSeconds, x.FetchPerGiB, mib(x.FetchRSS),
			x.InstallSeconds, x.InstallPerGiB, mib(x.InstallRSS), mib(x.MaxRSS), rss)
	}
}

func mib(n int64) string {
	switch {
	case n < 0:
		return "-"
	case n >= 1<<30:
		return fmt.Sprintf("%.2fGiB", float64(n)/(1<<30))
	default:
		return fmt.Sprintf("%.1fMiB", float64(n)/(1<<20))
	}
}

// span is a min–max range of seconds, "-" for a side measured once.
func span(lo, hi float64) string {
	if lo == 0 && hi == 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f–%.2f", lo, hi)
}
