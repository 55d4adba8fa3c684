/* minimal.c — load a model, feed a few tokens, print the most likely next tokens.
 * Build: cc minimal.c $(pkg-config --cflags --libs mamba3rt) -o minimal
 * Run:   ./minimal MODEL_DIR                                                        */
#include <stdio.h>
#include <stdlib.h>

#include "mamba3rt.h"

static int fail(const char* what, m3_status status) {
  fprintf(stderr, "%s failed: %s: %s\n", what, m3_status_name(status), m3_last_error());
  return 1;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: %s MODEL_DIR\n", argv[0]);
    return 2;
  }
  if (m3_abi_version() != M3_ABI_VERSION) {
    fprintf(stderr, "header/library ABI mismatch\n");
    return 1;
  }

  m3_model* model = NULL;
  m3_status st = m3_model_load(argv[1], NULL, &model);
  if (st != M3_OK) return fail("m3_model_load", st);

  int64_t vocab = 0, padded = 0;
  m3_model_info(model, M3_INFO_VOCAB_SIZE, &vocab);
  m3_model_info(model, M3_INFO_VOCAB_PADDED, &padded);

  m3_session* session = NULL;
  st = m3_session_create(model, &session);
  if (st != M3_OK) return fail("m3_session_create", st);

  const int32_t prompt[] = {1, 2, 3, 4};
  float* logits = malloc(sizeof(float) * (size_t)padded);
  st = m3_session_feed(session, prompt, 4, M3_LOGITS_LAST, logits, (size_t)padded);
  if (st != M3_OK) return fail("m3_session_feed", st);

  /* The five highest logits among real token ids (columns >= vocab are padding). */
  printf("top tokens after the prompt:\n");
  for (int rank = 0; rank < 5; ++rank) {
    int64_t best = -1;
    for (int64_t i = 0; i < vocab; ++i)
      if (logits[i] == logits[i] && (best < 0 || logits[i] > logits[best])) best = i;
    printf("  %d. token %lld  logit %.4f\n", rank + 1, (long long)best, logits[best]);
    logits[best] = -1.0f / 0.0f; /* exclude it from the next round */
  }

  free(logits);
  m3_session_free(session);
  m3_model_free(model);
  return 0;
}
