/*
 * testbed_plot.c: an SVG line chart of mean latency against pods, one line
 * per users value, from a campaign's per-regime results.
 *
 * Hand-written SVG because the chart is simple and a plotting dependency
 * (gnuplot, matplotlib) would make `ndtpipe testbed campaign --plot` depend
 * on what is installed.  The y axis is logarithmic: saturation (one pod,
 * many users) is an order of magnitude above the rest, and a linear axis
 * would flatten every other point onto the floor.  Output depends only on
 * the results, so the committed docs/ image is reproducible.
 */
#include <math.h>
#include <stdio.h>

#include "common/ndt.h"
#include "testbed/testbed.h"

#define TESTBED_PLOT_W 640
#define TESTBED_PLOT_H 420
#define TESTBED_PLOT_LEFT 70
#define TESTBED_PLOT_RIGHT 150
#define TESTBED_PLOT_TOP 40
#define TESTBED_PLOT_BOTTOM 60

typedef struct testbed_axes {
    int pods_lo, pods_hi;
    double log_lo, log_hi; /* log10 of the y range, whole decades */
} testbed_axes;

static double testbed_plot_x(const testbed_axes *a, int pods)
{
    double span = a->pods_hi > a->pods_lo ? a->pods_hi - a->pods_lo : 1;
    return TESTBED_PLOT_LEFT +
           (TESTBED_PLOT_W - TESTBED_PLOT_LEFT - TESTBED_PLOT_RIGHT) * (pods - a->pods_lo) / span;
}

static double testbed_plot_y(const testbed_axes *a, double ms)
{
    double f = (log10(ms) - a->log_lo) / (a->log_hi - a->log_lo);
    return TESTBED_PLOT_H - TESTBED_PLOT_BOTTOM -
           f * (TESTBED_PLOT_H - TESTBED_PLOT_TOP - TESTBED_PLOT_BOTTOM);
}

static int testbed_plot_axes(const testbed_regime_result *r, size_t n, testbed_axes *a)
{
    double lo = INFINITY, hi = -INFINITY;
    a->pods_lo = r[0].pods;
    a->pods_hi = r[0].pods;
    for (size_t i = 0; i < n; i++) {
        if (!(r[i].mean_infer_ms > 0))
            continue;
        lo = fmin(lo, r[i].mean_infer_ms);
        hi = fmax(hi, r[i].mean_infer_ms);
        a->pods_lo = r[i].pods < a->pods_lo ? r[i].pods : a->pods_lo;
        a->pods_hi = r[i].pods > a->pods_hi ? r[i].pods : a->pods_hi;
    }
    if (!(lo <= hi))
        return NDT_ERROR;
    a->log_lo = floor(log10(lo));
    a->log_hi = ceil(log10(hi));
    if (a->log_hi <= a->log_lo)
        a->log_hi = a->log_lo + 1;
    return NDT_OK;
}

static void testbed_plot_frame(FILE *out, const testbed_axes *a)
{
    double x0 = TESTBED_PLOT_LEFT, x1 = TESTBED_PLOT_W - TESTBED_PLOT_RIGHT;
    double y0 = TESTBED_PLOT_H - TESTBED_PLOT_BOTTOM, y1 = TESTBED_PLOT_TOP;
    fprintf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n",
            TESTBED_PLOT_W, TESTBED_PLOT_H);
    fprintf(out, "<text x=\"%d\" y=\"24\" font-size=\"15\">Mean latency (avg_total_infer_ms) "
                 "against pods</text>\n", TESTBED_PLOT_LEFT);
    for (double d = a->log_lo; d <= a->log_hi + 1e-9; d += 1) {
        for (int m = 1; m <= 9; m++) {
            double v = m * pow(10, d);
            if (log10(v) > a->log_hi + 1e-9)
                break;
            double y = testbed_plot_y(a, v);
            fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\"/>\n",
                    x0, y, x1, y, m == 1 ? "#bbb" : "#eee");
            if (m == 1 || m == 2 || m == 5)
                fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"end\">%g</text>\n",
                        x0 - 6, y + 4, v);
        }
    }
    for (int p = a->pods_lo; p <= a->pods_hi; p++) {
        double x = testbed_plot_x(a, p);
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#eee\"/>\n",
                x, y0, x, y1);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"12\" text-anchor=\"middle\">%d</text>\n",
                x, y0 + 18, p);
    }
    fprintf(out, "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"none\" stroke=\"#333\"/>\n",
            x0, y1, x1 - x0, y0 - y1);
    fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\">pods</text>\n",
            (x0 + x1) / 2, y0 + 40.0);
    fprintf(out, "<text x=\"16\" y=\"%.1f\" font-size=\"13\" text-anchor=\"middle\" "
                 "transform=\"rotate(-90 16 %.1f)\">latency, ms (log scale)</text>\n",
            (y0 + y1) / 2, (y0 + y1) / 2);
}

int testbed_plot_svg(const testbed_regime_result *r, size_t n, FILE *out, char *err,
                     size_t errlen)
{
    static const char *colors[] = { "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd" };
    testbed_axes a;
    if (n == 0 || testbed_plot_axes(r, n, &a) != NDT_OK) {
        snprintf(err, errlen, "no regime has a latency to plot");
        return NDT_ERROR;
    }
    fprintf(out, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
                 "font-family=\"sans-serif\">\n", TESTBED_PLOT_W, TESTBED_PLOT_H);
    testbed_plot_frame(out, &a);
    /* Results come grouped by users, pods ascending (campaign order). */
    size_t line = 0;
    for (size_t i = 0; i < n; line++) {
        size_t j = i;
        const char *color = colors[line % NDT_ARRAY_LEN(colors)];
        fprintf(out, "<polyline fill=\"none\" stroke=\"%s\" stroke-width=\"2\" points=\"", color);
        for (j = i; j < n && r[j].users == r[i].users; j++)
            if (r[j].mean_infer_ms > 0)
                fprintf(out, "%.1f,%.1f ", testbed_plot_x(&a, r[j].pods),
                        testbed_plot_y(&a, r[j].mean_infer_ms));
        fprintf(out, "\"/>\n");
        for (size_t k = i; k < j; k++)
            if (r[k].mean_infer_ms > 0)
                fprintf(out, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" fill=\"%s\"/>\n",
                        testbed_plot_x(&a, r[k].pods), testbed_plot_y(&a, r[k].mean_infer_ms),
                        color);
        double ly = TESTBED_PLOT_TOP + 20.0 + 22.0 * (double)line;
        double lx = TESTBED_PLOT_W - TESTBED_PLOT_RIGHT + 16.0;
        fprintf(out, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%s\" stroke-width=\"2\"/>\n",
                lx, ly, lx + 24, ly, color);
        fprintf(out, "<text x=\"%.1f\" y=\"%.1f\" font-size=\"13\">%d users</text>\n", lx + 30,
                ly + 4, r[i].users);
        i = j;
    }
    fprintf(out, "</svg>\n");
    if (fflush(out) != 0 || ferror(out)) {
        snprintf(err, errlen, "writing the plot failed");
        return NDT_ERROR;
    }
    return NDT_OK;
}
