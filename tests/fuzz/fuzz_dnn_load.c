/*
 * fuzz_dnn_load.c: the DNN model file reader (model.dnn).  A real model
 * does not fit libFuzzer's input size and its checksum stops almost every
 * mutation at the door, so the input is a patch on a real file: a tiny
 * DNN is trained once, then each input is
 *   byte 0      bit 0: recompute the checksum after patching (reach the
 *               field checks behind it); bit 1: truncate
 *   bytes 1-4   truncation length (modulo the file size)
 *   then pairs  (3-byte offset, value): bytes to overwrite
 * Invariants: a failure always comes with a message; a model that loads
 * predicts a row without a memory error.
 *
 * fuzz-sources: models/model_dnn.c features/feat_compute.c common/file.c
 * fuzz-seeds: none
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "models/models.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *base;
static size_t base_len;

static void make_base(void)
{
    float x[32 * FEAT_DIM], y[32];
    for (int i = 0; i < 32; i++) {
        for (int j = 0; j < FEAT_DIM; j++)
            x[i * FEAT_DIM + j] = (float)((i * 7 + j * 3) % 13);
        y[i] = (float)(i % 5);
    }
    model_dnn_params p;
    model_dnn_params_default(&p);
    p.epochs = 1;
    p.batch = 16;
    p.threads = 1;
    model_dnn *m;
    char err[NDT_ERRBUF_SIZE];
    if (model_dnn_train(x, y, 32, &p, NULL, NULL, &m, err, sizeof(err)) != NDT_OK ||
        model_dnn_save_buffer(m, &base, &base_len, err, sizeof(err)) != NDT_OK)
        abort();
    model_dnn_free(m);
}

static void fix_checksum(char *buf, size_t len)
{
    if (len < 8)
        return;
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len - 8; i++)
        h = (h ^ (unsigned char)buf[i]) * 1099511628211ULL;
    for (int k = 0; k < 8; k++)
        buf[len - 8 + k] = (char)(h >> (8 * k));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!base)
        make_base();
    if (size < 5)
        return 0;
    char *buf = malloc(base_len);
    memcpy(buf, base, base_len);
    size_t len = base_len;
    if (data[0] & 2) {
        uint32_t t = (uint32_t)data[1] | (uint32_t)data[2] << 8 | (uint32_t)data[3] << 16 |
                     (uint32_t)data[4] << 24;
        len = t % (base_len + 1);
    }
    for (size_t i = 5; i + 4 <= size; i += 4) {
        size_t off = ((size_t)data[i] | (size_t)data[i + 1] << 8 | (size_t)data[i + 2] << 16) % base_len;
        buf[off] = (char)data[i + 3];
    }
    if (data[0] & 1)
        fix_checksum(buf, len);
    model_dnn *m = NULL;
    char err[NDT_ERRBUF_SIZE] = "";
    if (model_dnn_load_buffer(buf, len, &m, err, sizeof(err)) != NDT_OK) {
        if (!err[0])
            abort();
    } else {
        float row[FEAT_DIM] = { 1, 2, 3, 4, 5, 6, 7 };
        double out;
        if (model_dnn_predict(m, row, 1, &out, err, sizeof(err)) != NDT_OK)
            abort();
        model_dnn_free(m);
    }
    free(buf);
    return 0;
}
