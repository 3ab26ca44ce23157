// One-pass CPU kernel for every anchorprep frame loss (float32): the loss and its gradient.
//
// The eager path (anchorprep/loss/_frame.py) spends 25-35 torch ops per loss; at (64, 500, C)
// their dispatch and allocations cost as much as the arithmetic. Here one call reads the logits,
// targets, padding, anchor distances and class weights once, in tiles that stay in L1, and
// writes the loss and ∂loss/∂logits (up to the upstream gradient) for the backward.
//
// Per frame t (valid m_t, class weight α_t, K_t = table[d_t], w_t = 1 + λ·K_t, c_t = m_t·w_t·α_t,
// focal exponent e_t = γ·K_t (SAFL) or γ):
//     term_t = c_t · q_t^{e_t} · CE_t,   q_t = 1 - p_t
// One logit or two classes use the margin μ = s·x (s = ±1 for target 1/0, x = z_1 - z_0):
//     ℓ = log σ(μ) = min(μ, 0) - log1p(exp(-|μ|)),  q = σ(-μ),  log q = ℓ - μ
//     ∂term/∂x = -c·s·q^e·(q + e·ℓ·(q - 1))
// More classes use the softmax: ℓ = z_y - max z - log Σ exp(z - max z), q = -expm1(ℓ),
//     ∂term/∂z_j = c·q^e·(1 - e·ℓ·(1 - q)/q)·(p_j - [j = y])
// Arguments of exp are clamped at log(FLT_MIN) (exp's slow underflow path, see _frame.py);
// invalid frames are zeroed before any arithmetic, so non-finite padding never reaches a sum.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/cpu/vec/vec.h>
#include <ATen/ops/empty.h>
#include <torch/library.h>

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <vector>

namespace {

using Vec = at::vec::Vectorized<float>;
constexpr int64_t kVec = Vec::size();
constexpr int64_t kTableOffset = 32768;  // table[d + 32768] = K(d), d in the int16 range
constexpr int64_t kNoAnchor = 32767;
const float kExpFloor = std::log(FLT_MIN);

enum Reduction : int64_t { kNone = 0, kSum = 1, kMean = 2 };

struct Inputs {
  const float* logits;
  const void* target;
  at::ScalarType target_type;
  const int64_t* lengths;  // nullptr: no lengths
  const bool* mask;        // nullptr: no mask
  const void* distance;    // nullptr: no anchors (K = 0)
  at::ScalarType distance_type;
  const float* table;
  const float* alpha;  // nullptr: no class weights
  int64_t frames_per_item, classes, ignore_index;
  float gain, gamma;
  bool focal, focal_per_frame;
};

struct Outputs {
  float* terms;  // nullptr unless reduction is "none"
  float* grad;   // nullptr when no gradient is needed
};

template <typename T>
int64_t read_int(const void* data, int64_t i) {
  return static_cast<int64_t>(static_cast<const T*>(data)[i]);
}

bool is_index_type(at::ScalarType type) {
  return type == at::kShort || type == at::kInt || type == at::kLong || type == at::kByte ||
         type == at::kChar;
}

int64_t read_index(const void* data, at::ScalarType type, int64_t i) {
  switch (type) {
    case at::kShort: return read_int<int16_t>(data, i);
    case at::kInt: return read_int<int32_t>(data, i);
    case at::kLong: return read_int<int64_t>(data, i);
    case at::kByte: return read_int<uint8_t>(data, i);
    default: return read_int<int8_t>(data, i);  // is_index_type() checked before
  }
}

// Per-frame scratch for one tile: c_t, e_t, the sign s, three work rows and the class (-1: masked).
struct Tile {
  std::vector<float> coef, exponent, sign, a, b, c;
  std::vector<int64_t> cls;
  explicit Tile(int64_t n)
      : coef(n), exponent(n), sign(n), a(n), b(n), c(n), cls(n) {}
};

struct Partial {
  double loss = 0, frames = 0, weights = 0;
  int64_t bad_target = INT64_MIN;  // a target outside 0..C-1 at a valid frame
};

// Fills coef/exponent/cls for frames [begin, end); returns the denominators in `part`.
void frame_coefficients(const Inputs& in, int64_t begin, int64_t end, int64_t num_classes,
                        Tile& tile, Partial& part) {
  int64_t item = begin / in.frames_per_item, frame = begin % in.frames_per_item;
  for (int64_t i = begin; i < end; ++i, ++frame) {
    if (frame == in.frames_per_item) {
      frame = 0;
      ++item;
    }
    const int64_t k = i - begin;
    const int64_t y = read_index(in.target, in.target_type, i);
    bool valid = y != in.ignore_index;
    if (in.lengths) valid = valid && frame < in.lengths[item];
    if (in.mask) valid = valid && in.mask[i];
    if (valid && (y < 0 || y >= num_classes)) {
      part.bad_target = y;
      valid = false;
    }
    float kernel = 0.0f;
    if (in.distance) {
      const int64_t d = std::clamp<int64_t>(read_index(in.distance, in.distance_type, i),
                                            -kNoAnchor, kNoAnchor);
      kernel = in.table[d + kTableOffset];
    }
    const float weight = valid ? 1.0f + in.gain * kernel : 0.0f;
    part.frames += valid;
    part.weights += weight;
    tile.coef[k] = in.alpha && valid ? weight * in.alpha[y] : weight;
    tile.exponent[k] = in.focal_per_frame ? in.gamma * kernel : in.gamma;
    tile.cls[k] = valid ? y : -1;
  }
}

// q^e = exp(max(e·log q, log FLT_MIN)) for log q >= -FLT_MAX (0^0 = 1).
inline Vec focal_factor(const Vec& log_q, const Vec& e) {
  return at::vec::clamp_min(log_q * e, Vec(kExpFloor)).exp();
}

inline double reduce_terms(const float* terms, int64_t n) {
  double total = 0;
  for (int64_t k = 0; k < n; ++k) total += terms[k];
  return total;
}

// One logit (classes == 1) or two classes, frames [begin, end).
void sigmoid_tile(const Inputs& in, Outputs& out, int64_t begin, int64_t end, Tile& tile,
                  Partial& part) {
  const int64_t n = end - begin;
  frame_coefficients(in, begin, end, 2, tile, part);
  float* margin = tile.a.data();
  float* ell = tile.b.data();
  float* scratch = tile.c.data();
  for (int64_t k = 0; k < n; ++k) {
    const int64_t i = begin + k;
    const float x = in.classes == 1 ? in.logits[i] : in.logits[2 * i + 1] - in.logits[2 * i];
    const float s = tile.cls[k] == 1 ? 1.0f : -1.0f;
    tile.sign[k] = s;
    margin[k] = tile.cls[k] >= 0 ? s * x : 0.0f;
  }
  const Vec zero(0.0f), one(1.0f);
  int64_t k = 0;
  for (; k < n; k += kVec) {
    const int64_t m = std::min(kVec, n - k);
    const Vec mu = Vec::loadu(margin + k, m);
    const Vec c = Vec::loadu(tile.coef.data() + k, m);
    const Vec ex = at::vec::clamp_min(mu.abs().neg(), Vec(kExpFloor)).exp();
    const Vec l = at::vec::minimum(mu, zero) - ex.log1p();  // log σ(μ)
    const Vec inv = one / (one + ex);
    const Vec q = Vec::blendv(inv, ex * inv, mu >= zero);  // σ(-μ)
    Vec cf = c, slope = q;
    if (in.focal) {
      const Vec e = Vec::loadu(tile.exponent.data() + k, m);
      cf = c * focal_factor(l - mu, e);
      slope = q + e * l * (q - one);
    }
    (cf * l).neg().store(scratch + k, m);                      // term
    (cf * slope).neg().store(ell + k, m);                      // ∂term/∂μ
  }
  part.loss += reduce_terms(scratch, n);
  if (out.terms) std::copy(scratch, scratch + n, out.terms + begin);
  if (!out.grad) return;
  for (k = 0; k < n; ++k) {
    const float g = tile.sign[k] * ell[k];  // ∂term/∂x
    if (in.classes == 1) {
      out.grad[begin + k] = g;
    } else {
      out.grad[2 * (begin + k)] = -g;
      out.grad[2 * (begin + k) + 1] = g;
    }
  }
}

// Softmax over C > 2 classes, frames [begin, end); `prob` holds (end - begin) x C floats.
void softmax_tile(const Inputs& in, Outputs& out, int64_t begin, int64_t end, Tile& tile,
                  std::vector<float>& prob, Partial& part) {
  const int64_t n = end - begin, C = in.classes;
  frame_coefficients(in, begin, end, C, tile, part);
  float* ell = tile.a.data();
  float* sum = tile.b.data();
  float* scratch = tile.c.data();
  float* p = prob.data();
  const float* z = in.logits + begin * C;
  for (int64_t k = 0; k < n; ++k) {
    float* row = p + k * C;
    if (tile.cls[k] < 0) {  // exp(0) below: finite whatever the logits
      std::fill(row, row + C, 0.0f);
      ell[k] = 0.0f;
      continue;
    }
    const float* zr = z + k * C;
    float top = zr[0];
    for (int64_t j = 1; j < C; ++j) top = std::max(top, zr[j]);
    for (int64_t j = 0; j < C; ++j) row[j] = std::max(zr[j] - top, kExpFloor);
    ell[k] = zr[tile.cls[k]] - top;
  }
  at::vec::map([](Vec v) { return v.exp(); }, p, p, n * C);  // exp(z - max z)
  for (int64_t k = 0; k < n; ++k) {
    const float* row = p + k * C;
    float total = 0.0f;
    for (int64_t j = 0; j < C; ++j) total += row[j];
    sum[k] = total;
  }
  at::vec::map([](Vec v) { return v.log(); }, scratch, sum, n);
  const Vec one(1.0f);
  for (int64_t k = 0; k < n; k += kVec) {
    const int64_t m = std::min(kVec, n - k);
    const Vec l = Vec::loadu(ell + k, m) - Vec::loadu(scratch + k, m);  // ℓ = log p_y
    const Vec c = Vec::loadu(tile.coef.data() + k, m);
    Vec cf = c, ratio = one;
    if (in.focal) {
      const Vec e = Vec::loadu(tile.exponent.data() + k, m);
      const Vec q = l.expm1().neg();
      cf = c * focal_factor(at::vec::clamp_min(q.log(), Vec(-FLT_MAX)), e);
      ratio = one - e * l * (one - q) / at::vec::clamp_min(q, Vec(FLT_MIN));
    }
    (cf * l).neg().store(scratch + k, m);  // term
    (cf * ratio).store(ell + k, m);        // ∂term/∂CE
  }
  part.loss += reduce_terms(scratch, n);
  if (out.terms) std::copy(scratch, scratch + n, out.terms + begin);
  if (!out.grad) return;
  float* g = out.grad + begin * C;
  for (int64_t k = 0; k < n; ++k) {
    const float scale = ell[k] / sum[k];  // p_j = exp(z_j - max z) / Σ
    float* gr = g + k * C;
    const float* row = p + k * C;
    for (int64_t j = 0; j < C; ++j) gr[j] = scale * row[j];
    if (tile.cls[k] >= 0) gr[tile.cls[k]] -= ell[k];
  }
}

std::tuple<at::Tensor, at::Tensor, at::Tensor> frame_loss(
    const at::Tensor& logits, const at::Tensor& target, const std::optional<at::Tensor>& lengths,
    const std::optional<at::Tensor>& mask, const std::optional<at::Tensor>& distance,
    const std::optional<at::Tensor>& table, const std::optional<at::Tensor>& alpha,
    int64_t ignore_index, double gain, double gamma, bool focal_per_frame,
    bool normalize_weights, int64_t reduction, bool need_grad) {
  TORCH_CHECK(logits.device().is_cpu() && logits.scalar_type() == at::kFloat &&
                  logits.is_contiguous(), "logits must be contiguous float32 on the CPU");
  TORCH_CHECK(logits.dim() == 2 || logits.dim() == 3, "logits must be (B, T) or (B, T, C)");
  TORCH_CHECK(target.is_contiguous() && target.sizes() == logits.sizes().slice(0, 2) &&
                  is_index_type(target.scalar_type()),
              "target must be contiguous integer (B, T)");
  const int64_t batch = logits.size(0), frames = logits.size(1);
  const int64_t classes = logits.dim() == 3 ? logits.size(2) : 1;
  const int64_t total = batch * frames;
  Inputs in{logits.data_ptr<float>(), target.data_ptr(), target.scalar_type(),
            nullptr, nullptr, nullptr, at::kShort, nullptr, nullptr,
            frames, classes, ignore_index, static_cast<float>(gain),
            static_cast<float>(gamma), gamma != 0.0, focal_per_frame};
  if (lengths) {
    TORCH_CHECK(lengths->scalar_type() == at::kLong && lengths->is_contiguous() &&
                    lengths->numel() == batch, "lengths must be contiguous int64 (B,)");
    in.lengths = lengths->data_ptr<int64_t>();
  }
  if (mask) {
    TORCH_CHECK(mask->scalar_type() == at::kBool && mask->is_contiguous() &&
                    mask->numel() == total, "mask must be contiguous bool (B, T)");
    in.mask = mask->data_ptr<bool>();
  }
  if (distance) {
    TORCH_CHECK(distance->is_contiguous() && distance->numel() == total &&
                    is_index_type(distance->scalar_type()) && table &&
                    table->scalar_type() == at::kFloat && table->numel() == 2 * kTableOffset,
                "distance must be contiguous integer (B, T) with a float32 table of 65536 entries");
    in.distance = distance->data_ptr();
    in.distance_type = distance->scalar_type();
    in.table = table->data_ptr<float>();
  }
  if (alpha) {
    TORCH_CHECK(alpha->scalar_type() == at::kFloat && alpha->is_contiguous() &&
                    alpha->numel() == std::max<int64_t>(classes, 2),
                "alpha must be contiguous float32 with one weight per class");
    in.alpha = alpha->data_ptr<float>();
  }
  const auto options = logits.options();
  at::Tensor terms = reduction == kNone ? at::empty({batch, frames}, options) : at::Tensor();
  at::Tensor grad = need_grad ? at::empty(logits.sizes(), options) : at::empty({0}, options);
  Outputs out{terms.defined() ? terms.data_ptr<float>() : nullptr,
              need_grad ? grad.data_ptr<float>() : nullptr};

  // Fixed tiles, summed in order afterwards: the result does not depend on the thread count.
  const int64_t tile_frames =
      classes <= 2 ? 512 : std::max<int64_t>(kVec, (8192 / classes) / kVec * kVec);
  const int64_t num_tiles = (total + tile_frames - 1) / tile_frames;
  std::vector<Partial> partials(num_tiles);
  const int64_t grain = std::max<int64_t>(1, 32768 / (tile_frames * std::max<int64_t>(classes, 2)));
  at::parallel_for(0, num_tiles, grain, [&](int64_t first, int64_t last) {
    Tile tile(tile_frames);
    std::vector<float> prob(classes > 2 ? tile_frames * classes : 0);
    for (int64_t t = first; t < last; ++t) {
      const int64_t begin = t * tile_frames, end = std::min(total, begin + tile_frames);
      if (classes <= 2) {
        sigmoid_tile(in, out, begin, end, tile, partials[t]);
      } else {
        softmax_tile(in, out, begin, end, tile, prob, partials[t]);
      }
    }
  });
  Partial sum;
  for (const Partial& part : partials) {
    sum.loss += part.loss;
    sum.frames += part.frames;
    sum.weights += part.weights;
    if (part.bad_target != INT64_MIN) sum.bad_target = part.bad_target;
  }
  TORCH_CHECK_VALUE(sum.bad_target == INT64_MIN, "target ", sum.bad_target,
                    " at a valid frame is outside 0..", std::max<int64_t>(classes, 2) - 1);
  const double denominator =
      std::max(1.0, normalize_weights ? sum.weights : sum.frames);
  at::Tensor scale = at::empty({}, options);
  scale.fill_(reduction == kMean ? 1.0 / denominator : 1.0);  // ∂loss/∂Σ term
  at::Tensor loss = terms.defined() ? terms : at::empty({}, options).fill_(
      reduction == kMean ? sum.loss / denominator : sum.loss);
  return {loss, grad, scale};
}

}  // namespace

TORCH_LIBRARY(anchorprep, m) {
  m.def(
      "frame_loss(Tensor logits, Tensor target, Tensor? lengths, Tensor? mask, "
      "Tensor? distance, Tensor? table, Tensor? alpha, int ignore_index, float gain, "
      "float gamma, bool focal_per_frame, bool normalize_weights, int reduction, "
      "bool need_grad) -> (Tensor, Tensor, Tensor)");
  m.impl("frame_loss", c10::DispatchKey::CPU, TORCH_FN(frame_loss));
}
