#include "parallel.hpp"

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <exception>
#include <mutex>
#include <stop_token>
#include <string>
#include <thread>

#include "thinwire/codec/qsgd.hpp"
#include "thinwire/core/error.hpp"
#include "thinwire/core/spec.hpp"

namespace thinwire::codec::parallel {
namespace {

// The process-wide pool. Worker i runs part i + 1 of the current region; the region's caller
// runs part 0. One region at a time (region_ is held for its whole length).
class Pool {
 public:
  static Pool& instance() {
    static Pool pool;
    return pool;
  }

  [[nodiscard]] std::unique_lock<std::mutex> try_acquire() {
    return std::unique_lock<std::mutex>(region_, std::try_to_lock);
  }

  // Requires the region lock. Runs f(0) here and f(1..parts-1) on workers.
  void run(std::size_t parts, const std::function<void(std::size_t)>& f) {
    while (workers_.size() + 1 < parts) {
      const std::size_t index = workers_.size();
      workers_.emplace_back([this, index](std::stop_token st) { work(st, index); });
    }
    errors_.assign(parts, nullptr);
    {
      const std::lock_guard lk(m_);
      job_ = &f;
      parts_ = parts;
      pending_ = parts - 1;
      ++generation_;
    }
    cv_.notify_all();
    try {
      f(0);
    } catch (...) {
      errors_[0] = std::current_exception();
    }
    {
      std::unique_lock lk(m_);
      done_.wait(lk, [this] { return pending_ == 0; });
      job_ = nullptr;
    }
    for (const std::exception_ptr& e : errors_) {
      if (e) std::rethrow_exception(e);
    }
  }

  // Requires the region lock: the stream buffer of part p.
  [[nodiscard]] std::span<std::byte> scratch(std::size_t p, std::size_t bytes) {
    if (scratch_.size() <= p) scratch_.resize(p + 1);
    if (scratch_[p].size() < bytes) scratch_[p].resize(bytes);
    return {scratch_[p].data(), bytes};
  }

 private:
  Pool() = default;

  void work(std::stop_token st, std::size_t index) {
    std::uint64_t seen = 0;
    std::unique_lock lk(m_);
    for (;;) {
      if (!cv_.wait(lk, st, [&] { return generation_ != seen; })) return;
      seen = generation_;
      if (index + 1 >= parts_) continue;
      const std::function<void(std::size_t)>* job = job_;
      lk.unlock();
      std::exception_ptr error;
      try {
        (*job)(index + 1);
      } catch (...) {
        error = std::current_exception();
      }
      lk.lock();
      errors_[index + 1] = error;
      if (--pending_ == 0) done_.notify_one();
    }
  }

  std::mutex region_;
  std::mutex m_;
  std::condition_variable_any cv_;
  std::condition_variable_any done_;
  const std::function<void(std::size_t)>* job_ = nullptr;
  std::size_t parts_ = 0;
  std::size_t pending_ = 0;
  std::uint64_t generation_ = 0;
  std::vector<std::exception_ptr> errors_;
  std::vector<std::vector<std::byte>> scratch_;
  // Last: destroyed (stop requested, joined) before the state the workers use.
  std::vector<std::jthread> workers_;
};

}  // namespace

unsigned require_thread_count(std::string_view who, std::uint64_t threads) {
  if (threads < 1 || threads > kMaxThreads) {
    throw InvalidArgument(std::string(who) + ": threads must be in [1, " +
                          std::to_string(kMaxThreads) + "], got " + std::to_string(threads));
  }
  return static_cast<unsigned>(threads);
}

std::size_t part_count(unsigned threads, std::size_t d, std::size_t buckets) noexcept {
  const std::size_t by_size = std::max<std::size_t>(1, d / kMinElementsPerPart);
  return std::max<std::size_t>(
      1, std::min({static_cast<std::size_t>(std::min(threads, kMaxThreads)), by_size, buckets}));
}

bool try_run_parts(std::size_t parts, const std::function<void(std::size_t)>& f) {
  Pool& pool = Pool::instance();
  const std::unique_lock region = pool.try_acquire();
  if (!region.owns_lock()) return false;
  pool.run(parts, f);
  return true;
}

void run_parts_spawned(std::size_t parts, const std::function<void(std::size_t)>& f) {
  std::vector<std::exception_ptr> errors(parts);
  {
    std::vector<std::jthread> threads;
    for (std::size_t p = 1; p < parts; ++p) {
      threads.emplace_back([&, p] {
        try {
          f(p);
        } catch (...) {
          errors[p] = std::current_exception();
        }
      });
    }
    try {
      f(0);
    } catch (...) {
      errors[0] = std::current_exception();
    }
  }
  for (const std::exception_ptr& e : errors) {
    if (e) std::rethrow_exception(e);
  }
}

namespace {

// encode_parts with every part written in place, into a region of w's buffer reserved for the
// parts' largest streams one after the other; false (nothing written) if w is not on a byte
// boundary or lacks the room. A part that ends on a byte boundary exactly where the next part's
// room starts (as a bucketed codec's part without zero buckets does) leaves nothing to move; a
// part that ends earlier has the next one moved down, by memmove when on a byte boundary.
bool encode_parts_in_place(Pool& pool, std::size_t parts, BitWriter& w,
                           const std::function<std::uint64_t(std::size_t)>& max_bits,
                           const std::function<void(std::size_t, BitWriter&)>& encode_part) {
  std::vector<std::size_t> offset(parts + 1, 0);
  for (std::size_t p = 0; p < parts; ++p) {
    offset[p + 1] = offset[p] + static_cast<std::size_t>((max_bits(p) + 7) / 8);
  }
  std::byte* const base = w.reserve_bytes(offset[parts]);
  if (base == nullptr) return false;
  std::vector<std::uint64_t> bits(parts, 0);
  pool.run(parts, [&](std::size_t p) {
    BitWriter part(std::span<std::byte>(base + offset[p], offset[p + 1] - offset[p]));
    encode_part(p, part);
    bits[p] = part.bits_written();
    part.finish();
  });
  std::uint64_t end = bits[0];  // bits assembled at base so far
  for (std::size_t p = 1; p < parts; ++p) {
    const std::byte* from = base + offset[p];
    const std::size_t bytes = static_cast<std::size_t>((bits[p] + 7) / 8);
    if (end % 8 == 0) {
      if (end / 8 != offset[p]) std::memmove(base + end / 8, from, bytes);
    } else {
      // Not on a byte boundary: shift the part's bits into place through a copy (the source and
      // the destination overlap).
      const std::span<std::byte> copy = pool.scratch(p, bytes);
      std::memcpy(copy.data(), from, bytes);
      const std::size_t at = static_cast<std::size_t>(end / 8);
      BitWriter joined(std::span<std::byte>(base + at, offset[parts] - at));
      joined.put(static_cast<std::uint64_t>(base[at]), static_cast<unsigned>(end % 8));
      joined.put_stream(copy, bits[p]);
      joined.finish();
    }
    end += bits[p];
  }
  w.commit_bytes(static_cast<std::size_t>(end / 8));
  if (end % 8 != 0) {
    w.put(static_cast<std::uint64_t>(base[end / 8]), static_cast<unsigned>(end % 8));
  }
  return true;
}

}  // namespace

void encode_parts(std::size_t parts, BitWriter& w,
                  const std::function<std::uint64_t(std::size_t)>& max_bits,
                  const std::function<void(std::size_t, BitWriter&)>& encode_part) {
  Pool& pool = Pool::instance();
  const std::unique_lock region = parts > 1 ? pool.try_acquire() : std::unique_lock<std::mutex>();
  if (!region.owns_lock()) {
    for (std::size_t p = 0; p < parts; ++p) encode_part(p, w);
    return;
  }
  if (encode_parts_in_place(pool, parts, w, max_bits, encode_part)) return;
  // Sized here, on the calling thread: the pool's buffer table is not touched by workers.
  std::vector<std::span<std::byte>> buffers(parts);
  for (std::size_t p = 1; p < parts; ++p) {
    buffers[p] = pool.scratch(p, static_cast<std::size_t>((max_bits(p) + 7) / 8) + 8);
  }
  std::vector<std::uint64_t> bits(parts, 0);
  pool.run(parts, [&](std::size_t p) {
    if (p == 0) {
      encode_part(0, w);
      return;
    }
    BitWriter part(buffers[p]);
    encode_part(p, part);
    bits[p] = part.bits_written();
    part.finish();
  });
  for (std::size_t p = 1; p < parts; ++p) w.put_stream(buffers[p], bits[p]);
}

}  // namespace thinwire::codec::parallel

namespace thinwire::codec {

// The spec side of threads (declared in qsgd.hpp, shared by qsgd, terngrad and sign).
unsigned parse_threads_param(Spec& spec) {
  return parallel::require_thread_count(spec.name(), spec.get_uint("threads", 1));
}

std::string threads_spec_suffix(unsigned threads) {
  return threads == 1 ? std::string() : ",threads=" + std::to_string(threads);
}

}  // namespace thinwire::codec
