/*
 * model_dnn.c: the paper's DNN functional model (V-C1): three fully
 * connected hidden layers of 256, 128 and 64 units, each
 * dense -> batch normalisation -> ReLU -> dropout, then one linear output;
 * Huber loss, Adam, mini-batches.  It predicts the same target as XGBoost
 * (log latency, minus the optional baseline), from the same feature vector
 * standardised with the training set's mean and deviation; the target is
 * standardised too so the Huber threshold (delta, in standard deviations)
 * means the same on any dataset.
 *
 * The matrix products (forward, and both gradients of every layer) go
 * through OpenBLAS's cblas_sgemm on row-major mini-batches; everything
 * per element (normalisation, activations, dropout, Adam) is plain loops
 * in a fixed order.  Dense layers have no bias: batch normalisation's beta
 * is that bias.  The paper does not give its learning rate; ours is Adam's
 * customary 1e-3, dropout 0.3 (the low end of the paper's 0.3-0.6).
 *
 * Promises: the same data, parameters and seed give the same model bytes
 * (the shuffles, initial weights and dropout masks come from one seeded
 * generator; sgemm computes each output element in a fixed order).  A
 * trained model is immutable: predicting from several threads is safe.
 *
 * The file format (model.dnn in the registry) is small and checked on
 * load, because a model silently read wrong answers nonsense:
 *   "NDTDNN\0\0"  magic            u32 version (1)
 *   u32 inputs, u32 hidden[3]      the shape (7, 256, 128, 64 today)
 *   u32 n, bytes                   the feature spec string (features.h)
 *   f32 dropout, f32 huber_delta   how it was trained (informative)
 *   f32 x_mean[in], x_std[in], y_mean, y_std
 *   per hidden layer: f32 W[in*out], gamma[out], beta[out],
 *                     running_mean[out], running_var[out]
 *   f32 w_out[64], b_out
 *   u64 FNV-1a of every byte before it
 * all little-endian.  A file of another size, magic, version, shape or
 * feature spec, a checksum mismatch or a non-finite number is
 * NDT_EBADCONF naming the problem (tests/fuzz/fuzz_dnn_load.c).
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

#include "common/file.h"
#include "models/models.h"


#define DNN_LAYERS 3
#define DNN_MAGIC "NDTDNN\0\0"
#define DNN_VERSION 1u
#define DNN_Z_MAX 6.0f
#define DNN_BN_EPS 1e-3f
#define DNN_BN_MOMENTUM 0.99f /* running = m * running + (1 - m) * batch */
#define DNN_ADAM_B1 0.9
#define DNN_ADAM_B2 0.999
#define DNN_ADAM_EPS 1e-7
#define DNN_PREDICT_CHUNK 512
#define DNN_FILE_MAX (64u << 20)

static const int dnn_hidden[DNN_LAYERS] = { 256, 128, 64 };

/* One hidden layer's parameters (pointers into model_dnn.params). */
typedef struct dnn_layer {
    int in, out;
    float *w;     /* [in * out], row-major: input i, unit j at i * out + j */
    float *gamma; /* [out] */
    float *beta;  /* [out] */
} dnn_layer;

struct model_dnn {
    model_dnn_params params;
    int inputs;
    float x_mean[FEAT_DIM], x_std[FEAT_DIM];
    float y_mean, y_std;
    /* trainable parameters, contiguous so Adam is one loop */
    float *params_buf;
    size_t nparams;
    dnn_layer layer[DNN_LAYERS];
    float *w_out; /* [64] */
    float *b_out; /* [1] */
    /* batch-normalisation statistics for inference (not trained by Adam) */
    float *running_mean[DNN_LAYERS], *running_var[DNN_LAYERS];
    float *stats_buf;
};

void model_dnn_params_default(model_dnn_params *p)
{
    *p = (model_dnn_params){ .epochs = MODEL_DNN_DEFAULT_EPOCHS, .batch = MODEL_DNN_DEFAULT_BATCH,
                             .lr = MODEL_DNN_DEFAULT_LR, .dropout = MODEL_DNN_DEFAULT_DROPOUT,
                             .huber_delta = 1.0, .threads = 0, .seed = 1 };
}

/* ---- the seeded generator (splitmix64): shuffles, weights, dropout ---- */

static uint64_t dnn_next(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static double dnn_uniform(uint64_t *s) { return (double)(dnn_next(s) >> 11) / 9007199254740992.0; }

static double dnn_normal(uint64_t *s)
{
    double u = dnn_uniform(s), v = dnn_uniform(s);
    return sqrt(-2.0 * log(u > 0 ? u : 1e-300)) * cos(2 * M_PI * v);
}

/* ---- the model's memory ---- */

static model_dnn *dnn_alloc(int inputs)
{
    model_dnn *m = calloc(1, sizeof(*m));
    if (!m)
        return NULL;
    m->inputs = inputs;
    size_t n = 0, stats = 0;
    int in = inputs;
    for (int l = 0; l < DNN_LAYERS; l++) {
        n += (size_t)in * dnn_hidden[l] + 2 * (size_t)dnn_hidden[l];
        stats += 2 * (size_t)dnn_hidden[l];
        in = dnn_hidden[l];
    }
    n += (size_t)in + 1;
    m->nparams = n;
    m->params_buf = calloc(n, sizeof(float));
    m->stats_buf = calloc(stats, sizeof(float));
    if (!m->params_buf || !m->stats_buf) {
        model_dnn_free(m);
        return NULL;
    }
    float *p = m->params_buf, *st = m->stats_buf;
    in = inputs;
    for (int l = 0; l < DNN_LAYERS; l++) {
        int out = dnn_hidden[l];
        m->layer[l] = (dnn_layer){ .in = in, .out = out, .w = p };
        p += (size_t)in * out;
        m->layer[l].gamma = p;
        p += out;
        m->layer[l].beta = p;
        p += out;
        m->running_mean[l] = st;
        st += out;
        m->running_var[l] = st;
        st += out;
        in = out;
    }
    m->w_out = p;
    m->b_out = p + in;
    return m;
}

void model_dnn_free(model_dnn *m)
{
    if (!m)
        return;
    free(m->params_buf);
    free(m->stats_buf);
    free(m);
}

/* He initialisation for the ReLU layers, unit gains, zero shifts. */
static void dnn_init(model_dnn *m, uint64_t *rng)
{
    for (int l = 0; l < DNN_LAYERS; l++) {
        dnn_layer *L = &m->layer[l];
        double sd = sqrt(2.0 / L->in);
        for (size_t i = 0; i < (size_t)L->in * L->out; i++)
            L->w[i] = (float)(sd * dnn_normal(rng));
        for (int j = 0; j < L->out; j++) {
            L->gamma[j] = 1;
            L->beta[j] = 0;
            m->running_mean[l][j] = 0;
            m->running_var[l][j] = 1;
        }
    }
    int last = m->layer[DNN_LAYERS - 1].out;
    for (int j = 0; j < last; j++)
        m->w_out[j] = (float)(sqrt(1.0 / last) * dnn_normal(rng));
    m->b_out[0] = 0;
}

/* Mean and deviation of every input column and of the target. */
static void dnn_standardise(model_dnn *m, const float *x, const float *y, size_t n)
{
    for (int j = 0; j < m->inputs; j++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < n; i++)
            s += x[i * m->inputs + j];
        double mean = s / n;
        for (size_t i = 0; i < n; i++) {
            double d = x[i * m->inputs + j] - mean;
            ss += d * d;
        }
        double sd = sqrt(ss / n);
        m->x_mean[j] = (float)mean;
        m->x_std[j] = sd > 1e-12 ? (float)sd : 1.0f; /* a constant column stays 0 */
    }
    double s = 0, ss = 0;
    for (size_t i = 0; i < n; i++)
        s += y[i];
    double mean = s / n;
    for (size_t i = 0; i < n; i++)
        ss += (y[i] - mean) * (y[i] - mean);
    double sd = sqrt(ss / n);
    m->y_mean = (float)mean;
    m->y_std = sd > 1e-12 ? (float)sd : 1.0f;
}

/* ---- training ---- */

/* Activations of one mini-batch, kept for the backward pass. */
typedef struct dnn_work {
    int batch;
    float *a[DNN_LAYERS + 1]; /* inputs of each layer; a[3] feeds the output */
    float *z[DNN_LAYERS];     /* dense outputs */
    float *zhat[DNN_LAYERS];  /* normalised */
    float *y[DNN_LAYERS];     /* gamma * zhat + beta (before ReLU) */
    float *mask[DNN_LAYERS];  /* dropout scale: 0 or 1 / (1 - p) */
    float *mu[DNN_LAYERS], *inv_std[DNN_LAYERS];
    float *out, *dout;
    float *da, *dz, *dtmp; /* gradient scratch, widest layer */
    float *grad;           /* [nparams] */
    double *adam_m, *adam_v;
    float *target;
} dnn_work;

static void dnn_work_free(dnn_work *w)
{
    for (int l = 0; l <= DNN_LAYERS; l++)
        free(w->a[l]);
    for (int l = 0; l < DNN_LAYERS; l++) {
        free(w->z[l]);
        free(w->zhat[l]);
        free(w->y[l]);
        free(w->mask[l]);
        free(w->mu[l]);
        free(w->inv_std[l]);
    }
    free(w->out);
    free(w->dout);
    free(w->da);
    free(w->dz);
    free(w->dtmp);
    free(w->grad);
    free(w->adam_m);
    free(w->adam_v);
    free(w->target);
}

static int dnn_work_alloc(dnn_work *w, const model_dnn *m, int batch)
{
    int ok = 1, widest = m->inputs;
    *w = (dnn_work){ .batch = batch };
    w->a[0] = malloc((size_t)batch * m->inputs * sizeof(float));
    ok &= w->a[0] != NULL;
    for (int l = 0; l < DNN_LAYERS; l++) {
        size_t n = (size_t)batch * m->layer[l].out;
        widest = m->layer[l].out > widest ? m->layer[l].out : widest;
        ok &= (w->z[l] = malloc(n * sizeof(float))) != NULL;
        ok &= (w->zhat[l] = malloc(n * sizeof(float))) != NULL;
        ok &= (w->y[l] = malloc(n * sizeof(float))) != NULL;
        ok &= (w->mask[l] = malloc(n * sizeof(float))) != NULL;
        ok &= (w->a[l + 1] = malloc(n * sizeof(float))) != NULL;
        ok &= (w->mu[l] = malloc((size_t)m->layer[l].out * sizeof(float))) != NULL;
        ok &= (w->inv_std[l] = malloc((size_t)m->layer[l].out * sizeof(float))) != NULL;
    }
    ok &= (w->out = malloc((size_t)batch * sizeof(float))) != NULL;
    ok &= (w->dout = malloc((size_t)batch * sizeof(float))) != NULL;
    ok &= (w->target = malloc((size_t)batch * sizeof(float))) != NULL;
    ok &= (w->da = malloc((size_t)batch * widest * sizeof(float))) != NULL;
    ok &= (w->dz = malloc((size_t)batch * widest * sizeof(float))) != NULL;
    ok &= (w->dtmp = malloc((size_t)batch * widest * sizeof(float))) != NULL;
    ok &= (w->grad = calloc(m->nparams, sizeof(float))) != NULL;
    ok &= (w->adam_m = calloc(m->nparams, sizeof(double))) != NULL;
    ok &= (w->adam_v = calloc(m->nparams, sizeof(double))) != NULL;
    return ok ? NDT_OK : NDT_ERROR;
}

/* Gradient pointers laid out like the parameters. */
static float *dnn_grad_of(const model_dnn *m, const dnn_work *w, const float *param)
{
    return w->grad + (param - m->params_buf);
}

/* Dropout masks, 16 random bits an element (four per draw): drop when
 * the bits fall under p * 65536.  Keeps the generator off the profile. */
static void dnn_dropout_masks(float *mask, size_t n, double p, uint64_t *rng)
{
    const uint32_t cut = (uint32_t)(p * 65536.0);
    const float keep = p < 1 ? (float)(1.0 / (1.0 - p)) : 0;
    uint64_t bits = 0;
    for (size_t k = 0; k < n; k++) {
        if ((k & 3) == 0)
            bits = dnn_next(rng);
        mask[k] = (uint32_t)(bits & 0xffff) < cut ? 0.0f : keep;
        bits >>= 16;
    }
}

/* Forward pass of one training batch: batch statistics, dropout on.
 * Loops run along rows (unit j innermost) so they vectorise; the sums are
 * doubles in a fixed order. */
static void dnn_forward_train(model_dnn *m, dnn_work *w, uint64_t *rng)
{
    const int B = w->batch;
    double sum[256], sq[256];
    for (int l = 0; l < DNN_LAYERS; l++) {
        const dnn_layer *L = &m->layer[l];
        const int out = L->out;
        float *restrict z = w->z[l], *restrict mu = w->mu[l], *restrict inv = w->inv_std[l];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, out, L->in, 1.0f, w->a[l], L->in,
                    L->w, out, 0.0f, z, out);
        for (int j = 0; j < out; j++)
            sum[j] = sq[j] = 0;
        for (int i = 0; i < B; i++) {
            const float *zr = z + (size_t)i * out;
            for (int j = 0; j < out; j++)
                sum[j] += zr[j];
        }
        for (int j = 0; j < out; j++)
            mu[j] = (float)(sum[j] / B);
        for (int i = 0; i < B; i++) {
            const float *zr = z + (size_t)i * out;
            for (int j = 0; j < out; j++) {
                double d = zr[j] - mu[j];
                sq[j] += d * d;
            }
        }
        for (int j = 0; j < out; j++) {
            double var = sq[j] / B;
            inv[j] = (float)(1.0 / sqrt(var + DNN_BN_EPS));
            m->running_mean[l][j] = DNN_BN_MOMENTUM * m->running_mean[l][j] + (1 - DNN_BN_MOMENTUM) * mu[j];
            m->running_var[l][j] = DNN_BN_MOMENTUM * m->running_var[l][j] + (1 - DNN_BN_MOMENTUM) * (float)var;
        }
        dnn_dropout_masks(w->mask[l], (size_t)B * out, m->params.dropout, rng);
        float *restrict zhat = w->zhat[l], *restrict yv = w->y[l], *restrict next = w->a[l + 1];
        const float *restrict mask = w->mask[l], *restrict gamma = L->gamma, *restrict beta = L->beta;
        for (int i = 0; i < B; i++) {
            const size_t row = (size_t)i * out;
            const float *zr = z + row, *mr = mask + row;
            float *zhr = zhat + row, *yr = yv + row, *nr = next + row;
            for (int j = 0; j < out; j++) {
                float zh = (zr[j] - mu[j]) * inv[j];
                float y = gamma[j] * zh + beta[j];
                zhr[j] = zh;
                yr[j] = y;
                nr[j] = (y > 0 ? y : 0) * mr[j];
            }
        }
    }
    const int last = m->layer[DNN_LAYERS - 1].out;
    for (int i = 0; i < B; i++) {
        float s = m->b_out[0];
        for (int j = 0; j < last; j++)
            s += w->a[DNN_LAYERS][(size_t)i * last + j] * m->w_out[j];
        w->out[i] = s;
    }
}

/* Huber loss of the batch; fills dout with d(mean loss)/d(out). */
static double dnn_huber(const model_dnn *m, dnn_work *w)
{
    const double delta = m->params.huber_delta;
    double loss = 0;
    for (int i = 0; i < w->batch; i++) {
        double r = (double)w->out[i] - w->target[i], a = fabs(r);
        loss += a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
        double g = a <= delta ? r : (r > 0 ? delta : -delta);
        w->dout[i] = (float)(g / w->batch);
    }
    return loss / w->batch;
}

static void dnn_backward(const model_dnn *m, dnn_work *w)
{
    const int B = w->batch, last = m->layer[DNN_LAYERS - 1].out;
    float *gw_out = dnn_grad_of(m, w, m->w_out), *gb_out = dnn_grad_of(m, w, m->b_out);
    gb_out[0] = 0;
    for (int j = 0; j < last; j++)
        gw_out[j] = 0;
    for (int i = 0; i < B; i++) {
        gb_out[0] += w->dout[i];
        for (int j = 0; j < last; j++) {
            gw_out[j] += w->a[DNN_LAYERS][(size_t)i * last + j] * w->dout[i];
            w->da[(size_t)i * last + j] = w->dout[i] * m->w_out[j];
        }
    }
    for (int l = DNN_LAYERS - 1; l >= 0; l--) {
        const dnn_layer *L = &m->layer[l];
        const int out = L->out;
        float *ggamma = dnn_grad_of(m, w, L->gamma), *gbeta = dnn_grad_of(m, w, L->beta);
        /* through dropout and ReLU: dY */
        float *restrict dy = w->dtmp, *restrict dz = w->dz;
        const float *restrict da = w->da, *restrict yv = w->y[l], *restrict mask = w->mask[l];
        const float *restrict zhat = w->zhat[l];
        for (size_t k = 0; k < (size_t)B * out; k++)
            dy[k] = yv[k] > 0 ? da[k] * mask[k] : 0;
        /* batch normalisation's backward: per-unit sums along rows, then
         * dZ = gamma * inv_std / B * (B dY - sum dY - zhat sum dY zhat) */
        double sdy[256], sdyz[256];
        for (int j = 0; j < out; j++)
            sdy[j] = sdyz[j] = 0;
        for (int i = 0; i < B; i++) {
            const float *dyr = dy + (size_t)i * out, *zr = zhat + (size_t)i * out;
            for (int j = 0; j < out; j++) {
                sdy[j] += dyr[j];
                sdyz[j] += (double)dyr[j] * zr[j];
            }
        }
        float c[256], fsdy[256], fsdyz[256];
        for (int j = 0; j < out; j++) {
            ggamma[j] = (float)sdyz[j];
            gbeta[j] = (float)sdy[j];
            c[j] = L->gamma[j] * w->inv_std[l][j] / B;
            fsdy[j] = (float)sdy[j];
            fsdyz[j] = (float)sdyz[j];
        }
        for (int i = 0; i < B; i++) {
            const float *dyr = dy + (size_t)i * out, *zr = zhat + (size_t)i * out;
            float *dzr = dz + (size_t)i * out;
            for (int j = 0; j < out; j++)
                dzr[j] = c[j] * ((float)B * dyr[j] - fsdy[j] - zr[j] * fsdyz[j]);
        }
        /* dW = A^T dZ; dA (for the layer below) = dZ W^T */
        cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, L->in, out, B, 1.0f, w->a[l], L->in,
                    w->dz, out, 0.0f, dnn_grad_of(m, w, L->w), out);
        if (l > 0)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, L->in, out, 1.0f, w->dz, out,
                        L->w, out, 0.0f, w->da, L->in);
    }
}

static void dnn_adam(model_dnn *m, dnn_work *w, long step)
{
    const double c1 = 1 - pow(DNN_ADAM_B1, (double)step), c2 = 1 - pow(DNN_ADAM_B2, (double)step);
    /* lr folded with the bias corrections: lr * m/c1 / (sqrt(v/c2) + eps) */
    const double lr = m->params.lr / c1, rc2 = 1 / sqrt(c2);
    float *restrict param = m->params_buf;
    const float *restrict grad = w->grad;
    double *restrict am = w->adam_m, *restrict av = w->adam_v;
    const size_t n = m->nparams;
    for (size_t i = 0; i < n; i++) {
        double g = grad[i];
        am[i] = DNN_ADAM_B1 * am[i] + (1 - DNN_ADAM_B1) * g;
        av[i] = DNN_ADAM_B2 * av[i] + (1 - DNN_ADAM_B2) * g * g;
        param[i] -= (float)(lr * am[i] / (sqrt(av[i]) * rc2 + DNN_ADAM_EPS));
    }
}

static int dnn_check_params(const model_dnn_params *p, char *err, size_t errlen)
{
    if (p->epochs < 1 || p->epochs > MODEL_DNN_MAX_EPOCHS || p->batch < 2 ||
        p->batch > MODEL_DNN_MAX_BATCH || !(p->lr > 0 && p->lr <= 1) ||
        !(p->dropout >= 0 && p->dropout < 1) || !(p->huber_delta > 0)) {
        snprintf(err, errlen, "DNN parameters out of range (epochs %d, batch %d, lr %g, dropout %g)",
                 p->epochs, p->batch, p->lr, p->dropout);
        return NDT_EBADCONF;
    }
    return NDT_OK;
}

int model_dnn_train(const float *x, const float *y, size_t n, const model_dnn_params *p,
                    model_progress_fn progress, void *ctx, model_dnn **out, char *err,
                    size_t errlen)
{
    dnn_work w = { 0 };
    size_t *order = NULL;
    int rc;
    if ((rc = dnn_check_params(p, err, errlen)) != NDT_OK)
        return rc;
    if (n < 2) {
        snprintf(err, errlen, "the DNN needs at least 2 training rows, got %zu", n);
        return NDT_EBADCONF;
    }
    model_dnn *m = dnn_alloc(FEAT_DIM);
    int batch = (size_t)p->batch < n ? p->batch : (int)n;
    order = malloc(n * sizeof(size_t));
    if (!m || !order || dnn_work_alloc(&w, m, batch) != NDT_OK) {
        snprintf(err, errlen, "out of memory for the DNN (batch %d)", batch);
        rc = NDT_ERROR;
        goto fail;
    }
    m->params = *p;
    if (p->threads > 0)
        openblas_set_num_threads(p->threads);
    uint64_t rng = p->seed ^ 0x6e6474706970ULL; /* "ndtpip" */
    dnn_standardise(m, x, y, n);
    dnn_init(m, &rng);
    for (size_t i = 0; i < n; i++)
        order[i] = i;
    long step = 0;
    for (int epoch = 0; epoch < p->epochs; epoch++) {
        /* Fisher-Yates; the tail short of a whole batch waits for the next
         * shuffle (a one-row batch has no batch statistics). */
        for (size_t i = n - 1; i > 0; i--) {
            size_t j = (size_t)(dnn_next(&rng) % (i + 1)), t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        for (size_t b = 0; b + (size_t)batch <= n; b += (size_t)batch) {
            for (int i = 0; i < batch; i++) {
                size_t r = order[b + (size_t)i];
                for (int j = 0; j < FEAT_DIM; j++)
                    w.a[0][(size_t)i * FEAT_DIM + j] = (x[r * FEAT_DIM + j] - m->x_mean[j]) / m->x_std[j];
                w.target[i] = (y[r] - m->y_mean) / m->y_std;
            }
            dnn_forward_train(m, &w, &rng);
            double loss = dnn_huber(m, &w);
            if (!isfinite(loss)) {
                snprintf(err, errlen, "training diverged at epoch %d (loss not finite); lower --lr",
                         epoch + 1);
                rc = NDT_ERROR;
                goto fail;
            }
            dnn_backward(m, &w);
            dnn_adam(m, &w, ++step);
        }
        if (progress && progress(ctx, epoch + 1, p->epochs) != 0) {
            snprintf(err, errlen, "training stopped after %d of %d epochs", epoch + 1, p->epochs);
            rc = NDT_ERROR;
            goto fail;
        }
    }
    dnn_work_free(&w);
    free(order);
    *out = m;
    return NDT_OK;
fail:
    dnn_work_free(&w);
    free(order);
    model_dnn_free(m);
    return rc;
}

/* ---- inference ---- */

int model_dnn_predict(const model_dnn *m, const float *x, size_t n, double *out, char *err,
                      size_t errlen)
{
    /* a chunk of rows at a time: bounded scratch whatever n (one row: 2 kB) */
    const int C = n < DNN_PREDICT_CHUNK ? (n ? (int)n : 1) : DNN_PREDICT_CHUNK;
    const size_t width = (size_t)dnn_hidden[0];
    float *buf[2] = { malloc((size_t)C * width * sizeof(float)), malloc((size_t)C * width * sizeof(float)) };
    if (!buf[0] || !buf[1]) {
        free(buf[0]);
        free(buf[1]);
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    for (size_t start = 0; start < n; start += (size_t)C) {
        int b = n - start < (size_t)C ? (int)(n - start) : C;
        float *a = buf[0], *z = buf[1];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < m->inputs; j++)
                a[(size_t)i * m->inputs + j] = (x[(start + i) * m->inputs + j] - m->x_mean[j]) / m->x_std[j];
        for (int l = 0; l < DNN_LAYERS; l++) {
            const dnn_layer *L = &m->layer[l];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, L->out, L->in, 1.0f, a, L->in,
                        L->w, L->out, 0.0f, z, L->out);
            for (int j = 0; j < L->out; j++) {
                float s = L->gamma[j] / sqrtf(m->running_var[l][j] + DNN_BN_EPS);
                float t = L->beta[j] - m->running_mean[l][j] * s;
                for (int i = 0; i < b; i++) {
                    float v = z[(size_t)i * L->out + j] * s + t;
                    z[(size_t)i * L->out + j] = v > 0 ? v : 0;
                }
            }
            float *tmp = a;
            a = z;
            z = tmp;
        }
        const int last = m->layer[DNN_LAYERS - 1].out;
        for (int i = 0; i < b; i++) {
            float s = m->b_out[0];
            for (int j = 0; j < last; j++)
                s += a[(size_t)i * last + j] * m->w_out[j];
            /* A ReLU network extrapolates linearly, and the log target is
             * exponentiated: far outside the training rows a what-if could
             * come back as 1e13 ms.  The output is kept within
             * DNN_Z_MAX standard deviations of the training targets (6 is
             * ~2 minutes at the testbed's spread), beyond any latency the
             * twin can have been trained on. */
            if (s > DNN_Z_MAX)
                s = DNN_Z_MAX;
            else if (s < -DNN_Z_MAX)
                s = -DNN_Z_MAX;
            out[start + i] = (double)s * m->y_std + m->y_mean;
        }
    }
    free(buf[0]);
    free(buf[1]);
    return NDT_OK;
}

/* ---- the file format ---- */

typedef struct dnn_writer {
    char *buf;
    size_t len, cap;
} dnn_writer;

static void put_bytes(dnn_writer *w, const void *p, size_t n)
{
    if (w->buf && w->len + n <= w->cap)
        memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put_u32(dnn_writer *w, uint32_t v)
{
    unsigned char b[4] = { (unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                           (unsigned char)(v >> 24) };
    put_bytes(w, b, 4);
}

static void put_f32s(dnn_writer *w, const float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &v[i], 4);
        put_u32(w, u);
    }
}

static uint64_t dnn_fnv(const char *p, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

/* Everything but the checksum (buf NULL: only counts). */
static void dnn_serialise(const model_dnn *m, dnn_writer *w)
{
    float info[2] = { (float)m->params.dropout, (float)m->params.huber_delta };
    float ystat[2] = { m->y_mean, m->y_std };
    put_bytes(w, DNN_MAGIC, 8);
    put_u32(w, DNN_VERSION);
    put_u32(w, (uint32_t)m->inputs);
    for (int l = 0; l < DNN_LAYERS; l++)
        put_u32(w, (uint32_t)dnn_hidden[l]);
    put_u32(w, (uint32_t)strlen(feat_spec));
    put_bytes(w, feat_spec, strlen(feat_spec));
    put_f32s(w, info, 2);
    put_f32s(w, m->x_mean, (size_t)m->inputs);
    put_f32s(w, m->x_std, (size_t)m->inputs);
    put_f32s(w, ystat, 2);
    for (int l = 0; l < DNN_LAYERS; l++) {
        const dnn_layer *L = &m->layer[l];
        put_f32s(w, L->w, (size_t)L->in * L->out);
        put_f32s(w, L->gamma, (size_t)L->out);
        put_f32s(w, L->beta, (size_t)L->out);
        put_f32s(w, m->running_mean[l], (size_t)L->out);
        put_f32s(w, m->running_var[l], (size_t)L->out);
    }
    put_f32s(w, m->w_out, (size_t)m->layer[DNN_LAYERS - 1].out);
    put_f32s(w, m->b_out, 1);
}

int model_dnn_save_buffer(const model_dnn *m, char **buf, size_t *len, char *err, size_t errlen)
{
    dnn_writer count = { 0 };
    dnn_serialise(m, &count);
    dnn_writer w = { .buf = malloc(count.len + 8), .cap = count.len + 8 };
    if (!w.buf) {
        snprintf(err, errlen, "out of memory saving the DNN");
        return NDT_ERROR;
    }
    dnn_serialise(m, &w);
    uint64_t h = dnn_fnv(w.buf, w.len);
    put_u32(&w, (uint32_t)h);
    put_u32(&w, (uint32_t)(h >> 32));
    *buf = w.buf;
    *len = w.len;
    return NDT_OK;
}

typedef struct dnn_reader {
    const unsigned char *p, *end;
} dnn_reader;

static int get_u32(dnn_reader *r, uint32_t *v)
{
    if (r->end - r->p < 4)
        return 0;
    *v = (uint32_t)r->p[0] | (uint32_t)r->p[1] << 8 | (uint32_t)r->p[2] << 16 | (uint32_t)r->p[3] << 24;
    r->p += 4;
    return 1;
}

/* n finite floats; 0 on a short file or a NaN/infinity. */
static int get_f32s(dnn_reader *r, float *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        if (!get_u32(r, &u))
            return 0;
        memcpy(&v[i], &u, 4);
        if (!isfinite(v[i]))
            return 0;
    }
    return 1;
}

static int dnn_bad(char *err, size_t errlen, const char *why)
{
    snprintf(err, errlen, "not a usable ndtpipe DNN model: %s", why);
    return NDT_EBADCONF;
}

int model_dnn_load_buffer(const char *buf, size_t len, model_dnn **out, char *err, size_t errlen)
{
    dnn_reader r = { (const unsigned char *)buf, (const unsigned char *)buf + len };
    uint32_t version, inputs, hidden, speclen;
    if (len < 8 + 8 || memcmp(buf, DNN_MAGIC, 8) != 0)
        return dnn_bad(err, errlen, "wrong magic (not a model.dnn file)");
    uint64_t want = dnn_fnv(buf, len - 8);
    const unsigned char *t = (const unsigned char *)buf + len - 8;
    uint64_t got = (uint64_t)t[0] | (uint64_t)t[1] << 8 | (uint64_t)t[2] << 16 |
                   (uint64_t)t[3] << 24 | (uint64_t)t[4] << 32 | (uint64_t)t[5] << 40 |
                   (uint64_t)t[6] << 48 | (uint64_t)t[7] << 56;
    if (want != got)
        return dnn_bad(err, errlen, "checksum mismatch (truncated or corrupt)");
    r.p += 8;
    r.end -= 8;
    if (!get_u32(&r, &version) || version != DNN_VERSION)
        return dnn_bad(err, errlen, "unknown format version");
    if (!get_u32(&r, &inputs) || inputs != FEAT_DIM)
        return dnn_bad(err, errlen, "input width differs from this build's feature vector");
    for (int l = 0; l < DNN_LAYERS; l++)
        if (!get_u32(&r, &hidden) || hidden != (uint32_t)dnn_hidden[l])
            return dnn_bad(err, errlen, "layer shape differs from 256-128-64");
    if (!get_u32(&r, &speclen) || speclen != strlen(feat_spec) || (size_t)(r.end - r.p) < speclen ||
        memcmp(r.p, feat_spec, speclen) != 0)
        return dnn_bad(err, errlen, "trained on another feature spec");
    r.p += speclen;
    model_dnn *m = dnn_alloc((int)inputs);
    if (!m) {
        snprintf(err, errlen, "out of memory");
        return NDT_ERROR;
    }
    float info[2], ystat[2];
    int ok = get_f32s(&r, info, 2) && get_f32s(&r, m->x_mean, inputs) &&
             get_f32s(&r, m->x_std, inputs) && get_f32s(&r, ystat, 2);
    for (int l = 0; ok && l < DNN_LAYERS; l++) {
        dnn_layer *L = &m->layer[l];
        ok = get_f32s(&r, L->w, (size_t)L->in * L->out) && get_f32s(&r, L->gamma, (size_t)L->out) &&
             get_f32s(&r, L->beta, (size_t)L->out) && get_f32s(&r, m->running_mean[l], (size_t)L->out) &&
             get_f32s(&r, m->running_var[l], (size_t)L->out);
        for (int j = 0; ok && j < L->out; j++)
            ok = m->running_var[l][j] >= 0;
    }
    ok = ok && get_f32s(&r, m->w_out, (size_t)m->layer[DNN_LAYERS - 1].out) &&
         get_f32s(&r, m->b_out, 1);
    for (unsigned j = 0; ok && j < inputs; j++)
        ok = m->x_std[j] > 0;
    ok = ok && ystat[1] > 0 && r.p == r.end;
    if (!ok) {
        model_dnn_free(m);
        return dnn_bad(err, errlen, "wrong size or a non-finite or negative statistic");
    }
    model_dnn_params_default(&m->params);
    m->params.dropout = info[0];
    m->params.huber_delta = info[1];
    m->y_mean = ystat[0];
    m->y_std = ystat[1];
    *out = m;
    return NDT_OK;
}

int model_dnn_load_file(const char *path, model_dnn **out, char *err, size_t errlen)
{
    char why[NDT_ERRBUF_SIZE], *buf;
    size_t n;
    if (ndt_file_read(path, DNN_FILE_MAX, &buf, &n, err, errlen) != NDT_OK)
        return NDT_EBADCONF;
    int rc = model_dnn_load_buffer(buf, n, out, why, sizeof(why));
    free(buf);
    if (rc != NDT_OK)
        snprintf(err, errlen, "%s: %s", path, why);
    return rc;
}

const model_dnn_params *model_dnn_get_params(const model_dnn *m) { return &m->params; }
