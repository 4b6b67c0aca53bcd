// The FE-Adapter op on the CPU: library GEMMs for the two projections, fused C++ passes for the rest.
//
// Forward:  z = x Wd^T + bd (GEMM) -> a = act(conv_t(z) + bc) (one fused pass, no permute copies)
//           -> out = x + a Wu^T (GEMM with the residual as its C operand) -> + bu, prefix rows = x (one pass).
// Backward: da = dout Wu (GEMM) -> dh = da * act'(h) with h, a recomputed from z, and this block's share of
//           dWc, dbc (one pass) -> dz = transposed conv of dh (one pass) -> dx = dout + dz Wd (GEMM),
//           dWu = dout^T a, dWd = dz^T x (GEMMs). The reductions of these passes (dWc, dbc, dbd, dbu) are
//           partials of fixed row blocks summed in block order: they do not depend on the number of threads.
//           The GEMMs are the BLAS library's, whose results may (MKL's do, on Intel CPUs).
// Rows are (frame, token) with the T frames of a clip consecutive; prefix tokens (n < P) are not adapted.

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <vector>

namespace {

// The activation after the conv. The op takes it by name; `parse_activation` refuses any other name, and every
// switch below lists each enumerator with no default (-Werror=switch in CMakeLists.txt), so an activation
// without its formula does not compile, and none falls through to the identity.
enum class Activation { kNone, kGelu, kSilu, kRelu };

Activation parse_activation(const std::optional<c10::string_view>& name) {
  if (!name.has_value()) return Activation::kNone;
  if (*name == "gelu") return Activation::kGelu;
  if (*name == "silu") return Activation::kSilu;
  if (*name == "relu") return Activation::kRelu;
  TORCH_CHECK_VALUE(false, "activation must be one of (None, 'gelu', 'silu', 'relu'), got '", std::string(*name),
                    "'");
}

inline float activate(float h, Activation activation) {
  switch (activation) {
    case Activation::kNone: return h;
    case Activation::kGelu: return 0.5f * h * (1.0f + std::erf(h * 0.70710678118654752f));
    case Activation::kSilu: return h / (1.0f + std::exp(-h));
    case Activation::kRelu: return h > 0.0f ? h : 0.0f;
  }
  TORCH_CHECK(false, "invalid activation code ", static_cast<int>(activation));
}

inline float activation_grad(float h, Activation activation) {
  switch (activation) {
    case Activation::kNone: return 1.0f;
    case Activation::kGelu: return 0.5f * (1.0f + std::erf(h * 0.70710678118654752f)) +
                                   h * 0.39894228040143268f * std::exp(-0.5f * h * h);
    case Activation::kSilu: { const float s = 1.0f / (1.0f + std::exp(-h)); return s * (1.0f + h * (1.0f - s)); }
    case Activation::kRelu: return h > 0.0f ? 1.0f : 0.0f;
  }
  TORCH_CHECK(false, "invalid activation code ", static_cast<int>(activation));
}

struct Geometry {
  int64_t frames_total, tokens, bottleneck, kernel_size, frames, dilation, prefix;
  // Row of frame t of the clip that row `row` belongs to, same token; -1 outside the clip.
  inline int64_t shifted(int64_t row, int64_t offset) const {
    const int64_t frame = row / tokens, token = row % tokens;
    const int64_t t = frame % frames + offset;
    if (t < 0 || t >= frames) return -1;
    return (frame - frame % frames + t) * tokens + token;
  }
  inline int64_t tap_offset(int64_t k) const { return (k - kernel_size / 2) * dilation; }
};

// Conv weights transposed to (K, R) in fp32, so the inner loops run over contiguous channels.
std::vector<float> taps_by_channel(const at::Tensor& w_conv) {
  const auto w = w_conv.to(at::kFloat).t().contiguous();
  return std::vector<float>(w.data_ptr<float>(), w.data_ptr<float>() + w.numel());
}

std::vector<float> bias_or_zeros(const std::optional<at::Tensor>& bias, int64_t size) {
  if (!bias) return std::vector<float>(size, 0.0f);
  const auto b = bias->to(at::kFloat).contiguous();
  return std::vector<float>(b.data_ptr<float>(), b.data_ptr<float>() + size);
}

// h[row] = bc + sum_k wc[:, k] * z[shifted(row, offset_k)] for one row, into `h` (fp32, R values).
template <typename scalar_t>
inline void conv_row(const scalar_t* z, const Geometry& g, const std::vector<float>& taps,
                     const std::vector<float>& bias, int64_t row, float* h) {
  const int64_t R = g.bottleneck;
  for (int64_t r = 0; r < R; ++r) h[r] = bias[r];
  for (int64_t k = 0; k < g.kernel_size; ++k) {
    const int64_t source = g.shifted(row, g.tap_offset(k));
    if (source < 0) continue;
    const scalar_t* zs = z + source * R;
    const float* w = taps.data() + k * R;
    for (int64_t r = 0; r < R; ++r) h[r] += w[r] * static_cast<float>(zs[r]);
  }
}

template <typename scalar_t>
void conv_activation_forward(const at::Tensor& z, at::Tensor& a, const Geometry& g, const std::vector<float>& taps,
                             const std::vector<float>& bias, Activation activation) {
  const scalar_t* zp = z.data_ptr<scalar_t>();
  scalar_t* ap = a.data_ptr<scalar_t>();
  const int64_t R = g.bottleneck, rows = g.frames_total * g.tokens;
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> h(R);
    for (int64_t row = begin; row < end; ++row) {
      scalar_t* out = ap + row * R;
      if (row % g.tokens < g.prefix) {
        for (int64_t r = 0; r < R; ++r) out[r] = scalar_t(0);
        continue;
      }
      conv_row(zp, g, taps, bias, row, h.data());
      for (int64_t r = 0; r < R; ++r) out[r] = static_cast<scalar_t>(activate(static_cast<float>(static_cast<scalar_t>(h[r])), activation));
    }
  });
}

template <typename scalar_t>
void bias_and_prefix(at::Tensor& out, const at::Tensor& x, const std::vector<float>& bias, bool has_bias,
                     int64_t tokens, int64_t prefix) {
  const int64_t C = out.size(1), rows = out.size(0);
  scalar_t* op = out.data_ptr<scalar_t>();
  const scalar_t* xp = x.data_ptr<scalar_t>();
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    for (int64_t row = begin; row < end; ++row) {
      scalar_t* o = op + row * C;
      if (row % tokens < prefix) {
        const scalar_t* xr = xp + row * C;
        for (int64_t c = 0; c < C; ++c) o[c] = xr[c];
      } else if (has_bias) {
        for (int64_t c = 0; c < C; ++c) o[c] = static_cast<scalar_t>(static_cast<float>(o[c]) + bias[c]);
      }
    }
  });
}

constexpr int64_t kPartialRows = 256;  // rows per conv-gradient partial: fixed, so results ignore thread counts

// dh = da * act'(h) (fp32), a = act(h) when wanted, and, when weight_grads, per-block partials of dWc (R x K)
// and dbc (R) into `partials` (blocks, (K + 1) R); without weight_grads `partials` is never touched.
template <typename scalar_t>
void conv_activation_backward(const at::Tensor& z, const at::Tensor& da, at::Tensor& dh, at::Tensor* a,
                              at::Tensor& partials, const Geometry& g, const std::vector<float>& taps,
                              const std::vector<float>& bias, Activation activation, bool weight_grads) {
  const scalar_t* zp = z.data_ptr<scalar_t>();
  const scalar_t* dap = da.data_ptr<scalar_t>();
  float* dhp = dh.data_ptr<float>();
  scalar_t* ap = a ? a->data_ptr<scalar_t>() : nullptr;
  float* pp = partials.data_ptr<float>();
  const int64_t R = g.bottleneck, K = g.kernel_size, rows = g.frames_total * g.tokens;
  const int64_t blocks = (rows + kPartialRows - 1) / kPartialRows;
  at::parallel_for(0, blocks, 1, [&](int64_t block_begin, int64_t block_end) {
    std::vector<float> h(R);
    for (int64_t block = block_begin; block < block_end; ++block) {
      // [dWc (K x R) | dbc (R)] of this block; `partials` has a row per block only when weight_grads.
      float* part = weight_grads ? pp + block * R * (K + 1) : nullptr;
      if (part) std::fill(part, part + R * (K + 1), 0.0f);
      for (int64_t row = block * kPartialRows; row < std::min(rows, (block + 1) * kPartialRows); ++row) {
        float* d = dhp + row * R;
        if (row % g.tokens < g.prefix) {
          for (int64_t r = 0; r < R; ++r) d[r] = 0.0f;
          if (ap) for (int64_t r = 0; r < R; ++r) ap[row * R + r] = scalar_t(0);
          continue;
        }
        conv_row(zp, g, taps, bias, row, h.data());
        const scalar_t* dar = dap + row * R;
        for (int64_t r = 0; r < R; ++r) {
          const float hr = static_cast<float>(static_cast<scalar_t>(h[r]));
          d[r] = static_cast<float>(dar[r]) * activation_grad(hr, activation);
          if (ap) ap[row * R + r] = static_cast<scalar_t>(activate(hr, activation));
        }
        if (!weight_grads) continue;
        for (int64_t k = 0; k < K; ++k) {
          const int64_t source = g.shifted(row, g.tap_offset(k));
          if (source < 0) continue;
          const scalar_t* zs = zp + source * R;
          float* dw = part + k * R;
          for (int64_t r = 0; r < R; ++r) dw[r] += d[r] * static_cast<float>(zs[r]);
        }
        float* db = part + K * R;
        for (int64_t r = 0; r < R; ++r) db[r] += d[r];
      }
    }
  });
}

// dz[s] = sum_k wc[:, k] * dh[s - offset_k]: the transposed conv.
template <typename scalar_t>
void transposed_conv(const at::Tensor& dh, at::Tensor& dz, const Geometry& g, const std::vector<float>& taps) {
  const float* dhp = dh.data_ptr<float>();
  scalar_t* dzp = dz.data_ptr<scalar_t>();
  const int64_t R = g.bottleneck, rows = g.frames_total * g.tokens;
  at::parallel_for(0, rows, 64, [&](int64_t begin, int64_t end) {
    std::vector<float> acc(R);
    for (int64_t row = begin; row < end; ++row) {
      for (int64_t r = 0; r < R; ++r) acc[r] = 0.0f;
      for (int64_t k = 0; k < g.kernel_size; ++k) {
        const int64_t source = g.shifted(row, -g.tap_offset(k));
        if (source < 0) continue;
        const float* d = dhp + source * R;
        const float* w = taps.data() + k * R;
        for (int64_t r = 0; r < R; ++r) acc[r] += w[r] * d[r];
      }
      scalar_t* out = dzp + row * R;
      for (int64_t r = 0; r < R; ++r) out[r] = static_cast<scalar_t>(acc[r]);
    }
  });
}

// Column sums of the rows of `values` (rows, width) whose token is not a prefix token, as fp32 partials of
// fixed blocks of kPartialRows rows (blocks, width): like the conv partials, independent of the thread count.
template <typename scalar_t>
at::Tensor column_sum_partials(const at::Tensor& values, int64_t tokens, int64_t prefix) {
  const int64_t rows = values.size(0), width = values.size(1);
  const int64_t blocks = (rows + kPartialRows - 1) / kPartialRows;
  auto partials = at::zeros({blocks, width}, values.options().dtype(at::kFloat));
  const scalar_t* vp = values.data_ptr<scalar_t>();
  float* pp = partials.data_ptr<float>();
  at::parallel_for(0, blocks, 1, [&](int64_t block_begin, int64_t block_end) {
    for (int64_t block = block_begin; block < block_end; ++block) {
      float* part = pp + block * width;
      for (int64_t row = block * kPartialRows; row < std::min(rows, (block + 1) * kPartialRows); ++row) {
        if (row % tokens < prefix) continue;
        const scalar_t* v = vp + row * width;
        for (int64_t c = 0; c < width; ++c) part[c] += static_cast<float>(v[c]);
      }
    }
  });
  return partials;
}

// Sum partials (blocks, size) over blocks in block order, in parallel over elements only.
at::Tensor sum_in_order(const at::Tensor& partials) {
  const int64_t blocks = partials.size(0), size = partials.size(1);
  auto total = at::zeros({size}, partials.options());
  const float* p = partials.data_ptr<float>();
  float* t = total.data_ptr<float>();
  at::parallel_for(0, size, 1024, [&](int64_t begin, int64_t end) {
    for (int64_t b = 0; b < blocks; ++b)
      for (int64_t i = begin; i < end; ++i) t[i] += p[b * size + i];
  });
  return total;
}

Geometry geometry(const at::Tensor& x, const at::Tensor& w_conv, int64_t frames, int64_t dilation, int64_t prefix) {
  return Geometry{x.size(0), x.size(1), w_conv.size(0), w_conv.size(1), frames, dilation, prefix};
}

std::tuple<at::Tensor, at::Tensor> forward(
    const at::Tensor& x_in, const at::Tensor& w_down, const std::optional<at::Tensor>& b_down,
    const at::Tensor& w_conv, const std::optional<at::Tensor>& b_conv, const at::Tensor& w_up,
    const std::optional<at::Tensor>& b_up, int64_t num_frames, int64_t dilation,
    const std::optional<c10::string_view> activation_name, int64_t num_prefix_tokens) {
  const Activation activation = parse_activation(activation_name);
  const auto x = x_in.contiguous();
  const Geometry g = geometry(x, w_conv, num_frames, dilation, num_prefix_tokens);
  const auto x2 = x.view({-1, x.size(2)});
  const auto z = b_down ? at::addmm(*b_down, x2, w_down.t()) : at::mm(x2, w_down.t());
  auto a = at::empty_like(z);
  const auto taps = taps_by_channel(w_conv);
  const auto conv_bias = bias_or_zeros(b_conv, g.bottleneck);
  auto out = at::empty_like(x2);
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "fe_adapter_forward", [&] {
    conv_activation_forward<scalar_t>(z, a, g, taps, conv_bias, activation);
    out = at::addmm(x2, a, w_up.t());  // the residual rides in the GEMM
    bias_and_prefix<scalar_t>(out, x2, bias_or_zeros(b_up, x.size(2)), b_up.has_value(), g.tokens, g.prefix);
  });
  return {out.view_as(x), z.view({x.size(0), x.size(1), g.bottleneck})};
}

std::vector<at::Tensor> backward(
    const at::Tensor& grad_out, const at::Tensor& x_in, const at::Tensor& z_in, const at::Tensor& w_down,
    const at::Tensor& w_conv, const std::optional<at::Tensor>& b_conv, const at::Tensor& w_up, int64_t num_frames,
    int64_t dilation, const std::optional<c10::string_view> activation_name, int64_t num_prefix_tokens, bool need_x,
    bool need_down, bool need_weights) {
  const Activation activation = parse_activation(activation_name);
  const auto x = x_in.contiguous();
  const Geometry g = geometry(x, w_conv, num_frames, dilation, num_prefix_tokens);
  const int64_t R = g.bottleneck, K = g.kernel_size, C = x.size(2);
  const auto dout = grad_out.contiguous().view({-1, C});
  const auto x2 = x.view({-1, C});
  const auto z = z_in.contiguous().view({-1, R});
  const auto da = at::mm(dout, w_up);
  auto dh = at::empty(da.sizes(), da.options().dtype(at::kFloat));
  auto a = need_weights ? at::empty_like(z) : at::Tensor();
  const int64_t blocks = (z.size(0) + kPartialRows - 1) / kPartialRows;
  auto partials = need_weights ? at::empty({blocks, R * (K + 1)}, da.options().dtype(at::kFloat))
                                : at::empty({0}, da.options().dtype(at::kFloat));
  const auto taps = taps_by_channel(w_conv);
  const auto conv_bias = bias_or_zeros(b_conv, R);
  at::Tensor dz;
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "fe_adapter_backward", [&] {
    conv_activation_backward<scalar_t>(z, da, dh, need_weights ? &a : nullptr,
                                       partials, g, taps, conv_bias, activation, need_weights);
    if (need_x || need_down) {
      dz = at::empty_like(z);
      transposed_conv<scalar_t>(dh, dz, g, taps);
    }
  });
  const auto empty = x.new_empty({0});
  std::vector<at::Tensor> grads(7, empty);
  if (need_x) grads[0] = at::addmm(dout, dz, w_down).view_as(x);
  if (need_down) {
    grads[1] = at::mm(dz.t(), x2);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "fe_adapter_db_down", [&] {
      grads[2] = sum_in_order(column_sum_partials<scalar_t>(dz, g.tokens, g.prefix)).to(x.scalar_type());
    });
  }
  if (need_weights) {
    const auto conv = sum_in_order(partials);
    grads[3] = conv.narrow(0, 0, K * R).view({K, R}).t().contiguous().to(x.scalar_type());
    grads[4] = conv.narrow(0, K * R, R).to(x.scalar_type());
    grads[5] = at::mm(dout.t(), a);
    AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "fe_adapter_db_up", [&] {
      grads[6] = sum_in_order(column_sum_partials<scalar_t>(dout, g.tokens, g.prefix)).to(x.scalar_type());
    });
  }
  for (auto& grad : grads) {
    if (!grad.defined()) grad = x.new_empty({0});
  }
  return grads;
}

}  // namespace

TORCH_LIBRARY(fekernels_native, m) {
  m.def("forward(Tensor x, Tensor w_down, Tensor? b_down, Tensor w_conv, Tensor? b_conv, Tensor w_up, "
        "Tensor? b_up, int num_frames, int dilation, str? activation, int num_prefix_tokens) -> (Tensor, Tensor)");
  m.def("backward(Tensor grad_out, Tensor x, Tensor z, Tensor w_down, Tensor w_conv, Tensor? b_conv, "
        "Tensor w_up, int num_frames, int dilation, str? activation, int num_prefix_tokens, bool need_x, "
        "bool need_down, bool need_weights) -> Tensor[]");
}

TORCH_LIBRARY_IMPL(fekernels_native, CPU, m) {
  m.impl("forward", &forward);
  m.impl("backward", &backward);
}
