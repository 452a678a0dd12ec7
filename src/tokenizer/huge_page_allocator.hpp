#pragma once
// An allocator for the vocabulary's randomly read tables (the index's buckets and their
// second heads; the presence filter, 128/256 KB, would stay below kMinBytes and keeps the
// ordinary allocator): an array of at least kMinBytes is placed on its own 2 MB-aligned
// range, rounded up to whole 2 MB, that the kernel is asked to back with transparent huge
// pages (madvise(MADV_HUGEPAGE); the usual THP mode is "madvise", which gives none without
// it). A lookup of text never seen
// reads a line at a random place in several MB (o200k_base's buckets and second heads:
// 5.2 MB, ~1,300 4 KB pages, as many TLB entries as the second-level TLB holds), and
// building the tables at start-up took a page fault per 4 KB. The rounding costs memory:
// o200k_base's 3.2 MB of buckets take 4 MB, cl100k_base's 1.6 MB take 2 MB. Huge pages
// are advice: where the kernel declines (THP off, memory fragmented), the memory is
// ordinary pages and nothing else changes.
#include <cstddef>
#include <cstdint>
#include <new>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace turnout::tokenizer {

inline constexpr std::size_t kHugePageBytes = std::size_t{2} << 20;

template <typename T>
class HugePageAllocator {
 public:
  using value_type = T;
  // Smaller arrays stay on ordinary pages: a huge page each would waste most of it.
  static constexpr std::size_t kMinBytes = std::size_t{1} << 20;

  HugePageAllocator() = default;
  template <typename U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}

  T* allocate(std::size_t n) {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) return static_cast<T*>(::operator new(bytes, std::align_val_t{alignof(T)}));
    return static_cast<T*>(allocate_huge(rounded(bytes)));
  }
  void deallocate(T* memory, std::size_t n) noexcept {
    const std::size_t bytes = n * sizeof(T);
    if (bytes < kMinBytes) {
      ::operator delete(memory, std::align_val_t{alignof(T)});
      return;
    }
    release_huge(memory, rounded(bytes));
  }

  friend bool operator==(const HugePageAllocator&, const HugePageAllocator&) { return true; }

 private:
  static std::size_t rounded(std::size_t bytes) {
    return (bytes + kHugePageBytes - 1) / kHugePageBytes * kHugePageBytes;
  }
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  // Fresh pages straight from mmap: memory the heap has touched before is already backed
  // by 4 KB pages, which the advice does not replace.
  static void* allocate_huge(std::size_t bytes) {
    const std::size_t mapped = bytes + kHugePageBytes;
    void* const region = ::mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (region == MAP_FAILED) throw std::bad_alloc();
    const auto start = reinterpret_cast<std::uintptr_t>(region);
    const std::uintptr_t aligned = (start + kHugePageBytes - 1) & ~(std::uintptr_t{kHugePageBytes} - 1);
    if (aligned > start) ::munmap(region, aligned - start);
    const std::size_t tail = start + mapped - (aligned + bytes);
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + bytes), tail);
    ::madvise(reinterpret_cast<void*>(aligned), bytes, MADV_HUGEPAGE);  // advice: may be declined
    return reinterpret_cast<void*>(aligned);
  }
  static void release_huge(void* memory, std::size_t bytes) noexcept { ::munmap(memory, bytes); }
#else
  static void* allocate_huge(std::size_t bytes) {
    return ::operator new(bytes, std::align_val_t{kHugePageBytes});
  }
  static void release_huge(void* memory, std::size_t) noexcept {
    ::operator delete(memory, std::align_val_t{kHugePageBytes});
  }
#endif
};

}  // namespace turnout::tokenizer
