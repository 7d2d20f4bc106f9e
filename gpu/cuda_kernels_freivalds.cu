// One round's Freivalds pieces on the device (compute_backend::
// freivalds_pieces), in double: B r, A (B r), C r, the row norms of op(A)
// and sum_j r_j |b_j|^2, each matrix read once; a bias adds its (k+1)-th
// term to each (bias . r, 1, r_j bias_j^2). A stored matrix is reduced
// either along its rows (a block per row) or down its columns (32 columns x
// 8 row lanes per block, rows split into chunks whose partial sums are added
// in chunk order): both deterministic.
#include "gpu/cuda_kernels.hpp"
#include "gpu/cuda_launch.cuh"

namespace murmur::gpu_kernels {

namespace {

// How squares are summed alongside the products: not at all, plain
// (sum M^2: row norms of A), or weighted like the products (sum x M^2: the
// r-weighted column norms of B).
enum class squares : int { none, plain, weighted };

// y[row] = sum_col M[row, col] x[col]; ysq[row] per `sq`.
__global__ void row_dots_kernel(const float* M, int64_t rows, int64_t cols, const double* x, double* y,
                                double* ysq, squares sq) {
  __shared__ double shared[32];
  for (int64_t row = blockIdx.x; row < rows; row += gridDim.x) {
    const float* mr = M + row * cols;
    double a = 0, q = 0;
    for (int64_t col = threadIdx.x; col < cols; col += blockDim.x) {
      const double v = mr[col];
      a += v * x[col];
      if (sq == squares::plain) q += v * v;
      if (sq == squares::weighted) q += v * v * x[col];
    }
    a = block_sum(a, shared);
    if (sq != squares::none) q = block_sum(q, shared);
    if (threadIdx.x == 0) {
      y[row] = a;
      if (sq != squares::none) ysq[row] = q;
    }
  }
}

// Chunk blockIdx.y of the rows: py[g * cols + col] = sum_row w[row] M[row, col],
// pq likewise for the squares.
__global__ void col_dots_partial_kernel(const float* M, int64_t rows, int64_t cols, const double* w, int64_t chunk,
                                        double* py, double* pq, squares sq) {
  __shared__ double sy[8][32], sqr[8][32];
  const int64_t tiles = (cols + 31) / 32;
  const int64_t lo = blockIdx.y * chunk, hi = lo + chunk < rows ? lo + chunk : rows;
  for (int64_t t = blockIdx.x; t < tiles; t += gridDim.x) {
    const int64_t col = t * 32 + threadIdx.x;
    double a = 0, q = 0;
    if (col < cols)
      for (int64_t r = lo + threadIdx.y; r < hi; r += 8) {
        const double v = M[r * cols + col];
        a += v * w[r];
        if (sq == squares::plain) q += v * v;
        if (sq == squares::weighted) q += v * v * w[r];
      }
    __syncthreads();  // the previous tile's readers are done
    sy[threadIdx.y][threadIdx.x] = a;
    sqr[threadIdx.y][threadIdx.x] = q;
    __syncthreads();
    if (threadIdx.y == 0 && col < cols) {
      double ta = 0, tq = 0;
      for (int l = 0; l < 8; ++l) {
        ta += sy[l][threadIdx.x];
        tq += sqr[l][threadIdx.x];
      }
      py[blockIdx.y * cols + col] = ta;
      pq[blockIdx.y * cols + col] = tq;
    }
  }
}

__global__ void col_dots_finish_kernel(const double* py, const double* pq, int64_t cols, int chunks, double* y,
                                       double* ysq, squares sq) {
  for (int64_t col = global_index(); col < cols; col += global_stride()) {
    double a = 0, q = 0;
    for (int g = 0; g < chunks; ++g) {
      a += py[g * cols + col];
      q += pq[g * cols + col];
    }
    y[col] = a;
    if (sq != squares::none) ysq[col] = q;
  }
}

__global__ void to_double_kernel(const float* r, double* out, int64_t n) {
  for (int64_t i = global_index(); i < n; i += global_stride()) out[i] = r[i];
}

// One block: sums[0] = sum_j bias_j r_j, sums[1] = sum_j bias_j^2 r_j. The
// square is weighted like B's, so a non-finite bias_j makes sums[1] NaN
// even where r_j = 0 (inf * 0), as backend.hpp requires.
__global__ void __launch_bounds__(1024) bias_sums_kernel(const float* bias, const double* r, int64_t n,
                                                         double* sums) {
  __shared__ double shared[32];
  double a = 0, q = 0;
  for (int64_t j = threadIdx.x; j < n; j += blockDim.x) {
    const double v = bias[j];
    a += v * r[j];
    q += v * v * r[j];
  }
  a = block_sum(a, shared);
  q = block_sum(q, shared);
  if (threadIdx.x == 0) {
    sums[0] = a;
    sums[1] = q;
  }
}

// One block: out[m + i] += bias . r and out[2m + i] = sqrt(out[2m + i] + 1)
// with a bias (bias_sums non-null), else sqrt(out[2m + i]); out[3m] =
// sum_p bsq[p] (+ sum_j r_j bias_j^2).
__global__ void __launch_bounds__(1024) finish_kernel(double* out, int64_t m, const double* bsq, int64_t k,
                                                      const double* bias_sums) {
  __shared__ double shared[32];
  const double bias_r = bias_sums ? bias_sums[0] : 0.0, bias_row = bias_sums ? 1.0 : 0.0;
  for (int64_t i = threadIdx.x; i < m; i += blockDim.x) {
    out[m + i] += bias_r;
    out[2 * m + i] = sqrt(out[2 * m + i] + bias_row);
  }
  double s = 0;
  for (int64_t p = threadIdx.x; p < k; p += blockDim.x) s += bsq[p];
  s = block_sum(s, shared);
  if (threadIdx.x == 0) out[3 * m] = bias_sums ? s + bias_sums[1] : s;
}

int col_chunks(int64_t rows) {
  const int64_t want = (rows + 511) / 512;
  return static_cast<int>(want < 1 ? 1 : (want > 64 ? 64 : want));
}

void row_dots(cudaStream_t s, const float* M, int64_t rows, int64_t cols, const double* x, double* y, double* ysq,
              squares sq) {
  if (rows == 0) return;
  row_dots_kernel<<<grid_cap(rows), kThreads, 0, s>>>(M, rows, cols, x, y, ysq, sq);
}

void col_dots(cudaStream_t s, const float* M, int64_t rows, int64_t cols, const double* w, double* y, double* ysq,
              squares sq, double* partial) {
  if (cols == 0) return;
  const int chunks = col_chunks(rows);
  const int64_t chunk = (rows + chunks - 1) / chunks;
  double* py = partial;
  double* pq = partial + chunks * cols;
  col_dots_partial_kernel<<<dim3(grid_cap((cols + 31) / 32), static_cast<unsigned>(chunks)), dim3(32, 8), 0, s>>>(
      M, rows, cols, w, chunk, py, pq, sq);
  col_dots_finish_kernel<<<blocks_for(cols), kThreads, 0, s>>>(py, pq, cols, chunks, y, ysq, sq);
}

}  // namespace

int64_t freivalds_scratch_bytes(int64_t m, int64_t n, int64_t k) {
  // rd [n], br [k], bsq [k], the bias's two sums, then the column partials
  // of B (tb: k columns over n rows) or of A (ta: m columns over k rows),
  // values and squares.
  const int64_t partial_b = 2 * col_chunks(n) * k, partial_a = 2 * col_chunks(k) * m;
  return (n + 2 * k + 2 + (partial_a > partial_b ? partial_a : partial_b)) * static_cast<int64_t>(sizeof(double));
}

void freivalds_pieces(cudaStream_t s, bool trans_a, bool trans_b, int64_t m, int64_t n, int64_t k, const float* a,
                      const float* b, const float* bias, const float* c, const float* r, double* out,
                      void* scratch) {
  auto* rd = static_cast<double*>(scratch);
  double* br = rd + n;
  double* bsq = br + k;
  double* bias_sums = bsq + k;
  double* partial = bias_sums + 2;
  if (n > 0) to_double_kernel<<<blocks_for(n), kThreads, 0, s>>>(r, rd, n);
  if (bias) bias_sums_kernel<<<1, 1024, 0, s>>>(bias, rd, n, bias_sums);
  // B r and the r-weighted squared column norms of op(B), per p < k.
  if (!trans_b)
    row_dots(s, b, k, n, rd, br, bsq, squares::weighted);  // B stored k x n
  else
    col_dots(s, b, n, k, rd, br, bsq, squares::weighted, partial);  // B stored n x k
  // A (B r) -> out[m..2m), squared row norms of op(A) -> out[2m..3m).
  if (!trans_a)
    row_dots(s, a, m, k, br, out + m, out + 2 * m, squares::plain);  // A stored m x k
  else
    col_dots(s, a, k, m, br, out + m, out + 2 * m, squares::plain, partial);  // A stored k x m
  // C r -> out[0..m).
  row_dots(s, c, m, n, rd, out, nullptr, squares::none);
  finish_kernel<<<1, 1024, 0, s>>>(out, m, bsq, k, bias ? bias_sums : nullptr);
}

}  // namespace murmur::gpu_kernels
