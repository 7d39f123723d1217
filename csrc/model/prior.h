// The autoregressive model around the transformer (jukebox/prior/autoregressive.py;
// reference §c.2): token embedding shifted right with the start embedding at position 0,
// learned positions, conditioning added before (and for the non-merged decoders after) the
// transformer, and the output projection. With no output projection it is the 5b_lyrics
// lyric encoder's body ("only_encode").
#pragma once
#include <cstdint>
#include <memory>

#include "transformer.h"

namespace jb {

struct AutoregressiveParts {
  WeightView x_emb;                 // stored (bins, w)
  WeightView pos_emb;               // stored (len, w)
  const float* start_token = nullptr;  // (w); used when no y_cond is given
  std::unique_ptr<Transformer> transformer;
  WeightView x_out;                 // logical (w, bins), stored (bins, w); data null = encode only
  bool add_cond_after = false;      // !merged_decoder: x_cond is added again after the transformer
  int bins = 0;
};

class Autoregressive {
 public:
  explicit Autoregressive(AutoregressiveParts parts);

  int len() const { return parts_.transformer->dims().len; }
  int width() const { return parts_.transformer->dims().width; }
  int bins() const { return parts_.bins; }
  bool encode_only() const { return parts_.x_out.data == nullptr; }
  const Transformer& transformer() const { return *parts_.transformer; }

  // tokens: n x len. y_cond: n x w, or null for the start token. x_cond: n x x_cond_len x w
  // with x_cond_len len or 1 (broadcast), or null. out: n x len x bins logits, or n x len x w
  // activations when encode_only(). input/record: optional batch-0 transformer input and
  // per-layer residual stream, for comparison with the original.
  void forward(const int32_t* tokens, int n, const float* y_cond, const float* x_cond,
               int x_cond_len, const float* encoder_kv, float* out, ThreadPool& pool,
               Progress& progress, float* input = nullptr, float* record = nullptr) const {
    forward_prefix(tokens, n, len(), y_cond, x_cond, x_cond_len, encoder_kv, out, pool, progress, input, record);
  }
  // The same over the first `len` positions only (tokens still n x len() rows, of which
  // the first len - 1 are read); optionally hands every layer's k/v to `capture`.
  void forward_prefix(const int32_t* tokens, int n, int len, const float* y_cond, const float* x_cond,
                      int x_cond_len, const float* encoder_kv, float* out, ThreadPool& pool,
                      Progress& progress, float* input = nullptr, float* record = nullptr,
                      const Transformer::KVCapture& capture = nullptr, int attn_layer = -1,
                      int attn_head = 0, float* attn_out = nullptr) const;
  // Input embedding of position t: start embedding (t == 0) or token t-1, plus position and
  // conditioning (x_cond row t, or the broadcast row).
  void embed(int t, int32_t prev_token, const float* y_cond_b, const float* x_cond_b, int x_cond_len,
             float* out) const;
  const AutoregressiveParts& parts() const { return parts_; }
  double flops(int n) const;

 private:
  AutoregressiveParts parts_;
};

// 5b_lyrics: encoder_kv = prime_state_ln(prime_state_proj(encoder(lyric tokens))).
struct LyricEncoder {
  std::unique_ptr<Autoregressive> body;
  Linear proj;  // (w_lyrics, w)
  LayerNormW ln;
  int out_width = 0;
  void forward(const int32_t* tokens, int n, float* encoder_kv, ThreadPool& pool, Progress& progress) const;
  // The last step alone: the body's activations (n x len x w_lyrics) -> encoder_kv (the CUDA
  // backend runs the body on the device and finishes here).
  void project(const float* acts, int n, float* encoder_kv, ThreadPool& pool) const;
};

}  // namespace jb
