// mamba3rt info: print a model's configuration and sizes.
#include <cstdio>
#include <memory>

#include "cli_args.h"
#include "commands.h"

namespace cli {

int run_info(const std::vector<std::string>& argv) {
  Args args(argv, {"model", "backend", "device", "threads"}, {});
  m3_model* model = load_model(args.require("model"), args);
  std::unique_ptr<m3_model, void (*)(m3_model*)> guard(model, m3_model_free);
  auto info = [&](m3_model_info_key key) {
    int64_t v = 0;
    check(m3_model_info(model, key, &v), "model info");
    return static_cast<long long>(v);
  };
  std::printf("model:            %s\n", args.require("model").c_str());
  std::printf("backend:          %s\n", m3_backend_name(static_cast<m3_backend>(info(M3_INFO_BACKEND))));
  std::printf("device:           %s\n", device_name(model).c_str());
  std::printf("variant:          %s%s\n", info(M3_INFO_IS_MIMO) ? "MIMO" : "SISO",
              info(M3_INFO_IS_MIMO) ? (" rank " + std::to_string(info(M3_INFO_MIMO_RANK))).c_str() : "");
  std::printf("layers:           %lld\n", info(M3_INFO_N_LAYER));
  std::printf("d_model:          %lld\n", info(M3_INFO_D_MODEL));
  std::printf("d_inner:          %lld (%lld heads x headdim %lld)\n", info(M3_INFO_D_INNER), info(M3_INFO_N_HEADS),
              info(M3_INFO_HEADDIM));
  std::printf("d_state:          %lld (ngroups %lld, %lld rope angles)\n", info(M3_INFO_D_STATE),
              info(M3_INFO_N_GROUPS), info(M3_INFO_N_ROPE_ANGLES));
  std::printf("vocab:            %lld (padded %lld)\n", info(M3_INFO_VOCAB_SIZE), info(M3_INFO_VOCAB_PADDED));
  std::printf("output norm:      %s\n", info(M3_INFO_IS_OUTPROJ_NORM) ? "yes" : "no");
  std::printf("mlp hidden:       %lld\n", info(M3_INFO_MLP_HIDDEN));
  std::printf("tied embeddings:  %s\n", info(M3_INFO_TIE_EMBEDDINGS) ? "yes" : "no");
  std::printf("A activation:     %s\n",
              info(M3_INFO_A_ACTIVATION) == M3_A_ACTIVATION_SOFTPLUS ? "softplus" : "heavy_tail");
  std::printf("parameters:       %lld (%lld bytes of weights)\n", info(M3_INFO_N_PARAMS), info(M3_INFO_WEIGHT_BYTES));
  std::printf("state / session:  %lld bytes (constant; blob %lld bytes)\n", info(M3_INFO_STATE_BYTES),
              info(M3_INFO_STATE_BLOB_BYTES));
  return 0;
}

}  // namespace cli
