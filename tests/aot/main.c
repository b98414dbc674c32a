/* A C program against a smelt ahead-of-time library (tests/aot.rs builds it with
 * -include <model>.h -DMODEL=<model>): reads every input, in order, concatenated on
 * stdin, runs the model twice (the second run must agree bit for bit), writes every
 * output, in order, concatenated on stdout. Usage: main WEIGHTS_FILE | --names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define API(f) CAT(CAT(smelt_, MODEL), _##f)
#define MODEL_T CAT(smelt_, MODEL)

int main(int argc, char **argv) {
    if (argc == 2 && strcmp(argv[1], "--names") == 0) {
        /* The inputs' and outputs' names, in order: "in NAME" / "out NAME" lines. */
        for (size_t i = 0; i < API(num_inputs)(); i++) printf("in %s\n", API(input_name)(i));
        for (size_t i = 0; i < API(num_outputs)(); i++) printf("out %s\n", API(output_name)(i));
        return 0;
    }
    if (argc != 2) { fprintf(stderr, "usage: %s WEIGHTS | --names\n", argv[0]); return 2; }
    char err[256];
    MODEL_T *m = API(init)(argv[1], err, sizeof err);
    if (!m) { fprintf(stderr, "init: %s\n", err); return 1; }
    size_t ni = API(num_inputs)(), no = API(num_outputs)();
    void **in = calloc(ni + 1, sizeof *in), **out = calloc(no + 1, sizeof *out), **again = calloc(no + 1, sizeof *again);
    for (size_t i = 0; i < ni; i++) {
        size_t n = API(input_bytes)(i);
        in[i] = malloc(n + 1);
        if (fread(in[i], 1, n, stdin) != n) { fprintf(stderr, "short input %s\n", API(input_name)(i)); return 1; }
    }
    for (size_t i = 0; i < no; i++) {
        out[i] = malloc(API(output_bytes)(i) + 1);
        again[i] = malloc(API(output_bytes)(i) + 1);
    }
    if (API(run)(m, (const void *const *)in, out) != 0) { fprintf(stderr, "run: %s\n", API(error)(m)); return 1; }
    if (API(run)(m, (const void *const *)in, again) != 0) { fprintf(stderr, "run: %s\n", API(error)(m)); return 1; }
    for (size_t i = 0; i < no; i++) {
        size_t n = API(output_bytes)(i);
        if (memcmp(out[i], again[i], n) != 0) { fprintf(stderr, "runs differ on %s\n", API(output_name)(i)); return 1; }
        fwrite(out[i], 1, n, stdout);
    }
    API(free)(m);
    return 0;
}
