// The vocabulary's large tables sit on 2 MB-aligned ranges (the condition for the kernel to
// back them with huge pages); small arrays keep the ordinary allocator.
#include "tokenizer/huge_page_allocator.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace turnout::tokenizer {
namespace {

// The VmFlags line of the mapping that holds `address` (/proc/self/smaps; "hg" is
// MADV_HUGEPAGE), or "" if none does.
std::string vm_flags_of(const void* address) {
  std::ifstream smaps("/proc/self/smaps");
  const auto target = reinterpret_cast<std::uintptr_t>(address);
  bool inside = false;
  for (std::string line; std::getline(smaps, line);) {
    unsigned long long start = 0, end = 0;
    if (std::sscanf(line.c_str(), "%llx-%llx ", &start, &end) == 2 && line.find(' ') > line.find('-')) {
      inside = start <= target && target < end;
    } else if (inside && line.rfind("VmFlags:", 0) == 0) {
      return line;
    }
  }
  return "";
}

// A kernel built without transparent huge pages (or a sandbox kernel) has no such advice
// to give, and the allocator ignores a refused madvise: only the alignment is checked there.
bool kernel_has_transparent_huge_pages() {
  return std::ifstream("/sys/kernel/mm/transparent_hugepage/enabled").good();
}

bool advised_huge(const void* address) {
  std::istringstream flags(vm_flags_of(address));
  for (std::string flag; flags >> flag;) {
    if (flag == "hg") return true;
  }
  return false;
}

TEST(HugePageAllocator, LargeArraysStartOnA2MbBoundaryAndHoldTheirValues) {
  for (const std::size_t words : {HugePageAllocator<std::uint64_t>::kMinBytes / 8, std::size_t{400'000},
                                  std::size_t{2'000'000 / 8 + 5}}) {
    std::vector<std::uint64_t, HugePageAllocator<std::uint64_t>> table(words, 0);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(table.data()) % kHugePageBytes, 0u) << words;
#if defined(__linux__)
    if (kernel_has_transparent_huge_pages()) {
      EXPECT_TRUE(advised_huge(table.data())) << words << ": " << vm_flags_of(table.data());
    }
#endif
    for (std::size_t i = 0; i < words; ++i) table[i] = i * 0x9e3779b97f4a7c15ull;
    for (std::size_t i = 0; i < words; i += 4093) EXPECT_EQ(table[i], i * 0x9e3779b97f4a7c15ull);
    EXPECT_EQ(table.back(), (words - 1) * 0x9e3779b97f4a7c15ull);
  }
}

TEST(HugePageAllocator, SmallArraysUseTheOrdinaryAllocatorWithTheirAlignment) {
  struct alignas(64) Line {
    std::uint64_t words[8];
  };
  std::vector<Line, HugePageAllocator<Line>> lines(100);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(lines.data()) % 64, 0u);
#if defined(__linux__)
  EXPECT_FALSE(advised_huge(lines.data())) << vm_flags_of(lines.data());
#endif
  lines.back().words[7] = 42;
  lines.resize(20'000);  // 1.28 MB: grows from the ordinary allocator to a huge-page range
  EXPECT_EQ(lines[99].words[7], 42u);
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(lines.data()) % kHugePageBytes, 0u);
#if defined(__linux__)
  if (kernel_has_transparent_huge_pages()) {
    EXPECT_TRUE(advised_huge(lines.data())) << vm_flags_of(lines.data());
  }
#endif
}

}  // namespace
}  // namespace turnout::tokenizer
