// The per-thread piece cache: it must only ever return what was stored for exactly the
// same bytes, stay within its memory bounds, and never change what an encoding returns.
#include "tokenizer/piece_cache.hpp"
#include "tokenizer/tokenizer.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using turnout::tokenizer::Encoding;
using turnout::tokenizer::EncodingId;
using turnout::tokenizer::hash_token_bytes;
using turnout::tokenizer::PieceCache;
using turnout::tokenizer::TokenId;

std::vector<TokenId> tokens_found(const PieceCache& cache, const std::string& piece, std::uint64_t hash) {
  const auto found = cache.find(piece.data(), static_cast<std::uint32_t>(piece.size()), hash);
  return {found.begin(), found.end()};
}

void store(PieceCache& cache, const std::string& piece, std::uint64_t hash, const std::vector<TokenId>& tokens) {
  cache.store(piece.data(), static_cast<std::uint32_t>(piece.size()), hash, tokens);
}

std::string read_corpus(const std::string& category) {
  std::ifstream in(std::string(TURNOUT_SOURCE_DIR) + "/tests/golden/corpus/" + category + ".txt", std::ios::binary);
  std::ostringstream content;
  content << in.rdbuf();
  return content.str();
}

TEST(PieceCache, FindsWhatWasStoredForTheSameBytesOnly) {
  PieceCache cache;
  const std::string short_piece = " hello";
  const std::string long_piece(300, 'x');
  EXPECT_TRUE(tokens_found(cache, short_piece, hash_token_bytes(short_piece.data(), short_piece.size())).empty());
  store(cache, short_piece, hash_token_bytes(short_piece.data(), short_piece.size()), {24748});
  store(cache, long_piece, hash_token_bytes(long_piece.data(), long_piece.size()), {1, 2, 3, 4, 5, 6, 7, 8, 9});
  EXPECT_EQ(tokens_found(cache, short_piece, hash_token_bytes(short_piece.data(), short_piece.size())),
            std::vector<TokenId>{24748});
  EXPECT_EQ(tokens_found(cache, long_piece, hash_token_bytes(long_piece.data(), long_piece.size())),
            (std::vector<TokenId>{1, 2, 3, 4, 5, 6, 7, 8, 9}));
  // Same hash and length, different bytes (a hash collision): not a hit.
  EXPECT_TRUE(tokens_found(cache, " hellp", hash_token_bytes(short_piece.data(), short_piece.size())).empty());
  std::string other_long = long_piece;
  other_long[299] = 'y';
  EXPECT_TRUE(tokens_found(cache, other_long, hash_token_bytes(long_piece.data(), long_piece.size())).empty());
  cache.forget_all();
  EXPECT_TRUE(tokens_found(cache, short_piece, hash_token_bytes(short_piece.data(), short_piece.size())).empty());
  EXPECT_TRUE(tokens_found(cache, long_piece, hash_token_bytes(long_piece.data(), long_piece.size())).empty());
  // Stored again after forgetting: found again.
  store(cache, short_piece, hash_token_bytes(short_piece.data(), short_piece.size()), {24748});
  EXPECT_EQ(tokens_found(cache, short_piece, hash_token_bytes(short_piece.data(), short_piece.size())),
            std::vector<TokenId>{24748});
}

// Short pieces whose hashes pick the same set (the low bits) share its four ways: four are
// all kept, a fifth displaces exactly one of them, and each hit returns its own tokens.
TEST(PieceCache, PiecesThatShareASetShareItsFourWays) {
  PieceCache cache;
  std::vector<std::string> pieces;
  std::vector<std::uint64_t> hashes;
  for (std::uint64_t i = 1; i <= 5; ++i) {
    pieces.push_back(" piece" + std::to_string(i));
    hashes.push_back((i * 0x9e3779b97f4a7c15ULL) << 12 | 0x123);  // same low 12 bits, different tags
  }
  auto kept = [&] {
    std::size_t count = 0;
    for (std::size_t i = 0; i < pieces.size(); ++i) {
      const std::vector<TokenId> found = tokens_found(cache, pieces[i], hashes[i]);
      if (found.empty()) continue;
      EXPECT_EQ(found, (std::vector<TokenId>{static_cast<TokenId>(100 + i), 7})) << pieces[i];
      ++count;
    }
    return count;
  };
  for (std::size_t i = 0; i < 4; ++i) store(cache, pieces[i], hashes[i], {static_cast<TokenId>(100 + i), 7});
  EXPECT_EQ(kept(), 4u);
  store(cache, pieces[4], hashes[4], {104, 7});
  EXPECT_EQ(kept(), 4u);
  EXPECT_FALSE(tokens_found(cache, pieces[4], hashes[4]).empty());
  // The same piece found under another set's hash is not a hit (the set comes from the hash).
  EXPECT_TRUE(tokens_found(cache, pieces[4], hashes[4] ^ 1).empty());
  cache.forget_all();
  EXPECT_EQ(kept(), 0u);
}

TEST(PieceCache, KeepsOnlyWhatFitsItsBounds) {
  PieceCache cache;
  // A short piece of more tokens than an entry holds is not kept.
  const std::string bytes = "\x80\x81\x82\x83\x84\x85\x86\x87\x88";
  store(cache, bytes, 7, std::vector<TokenId>(PieceCache::kMaxShortTokens + 1, 5));
  EXPECT_TRUE(tokens_found(cache, bytes, 7).empty());
  // Nor is a piece over the long-piece limit.
  const std::string huge(PieceCache::kMaxLongPieceBytes + 1, 'a');
  store(cache, huge, 11, {1});
  EXPECT_TRUE(tokens_found(cache, huge, 11).empty());
  // Long pieces never hold more than the byte budget, however many are stored.
  const std::size_t piece_bytes = PieceCache::kMaxLongPieceBytes;
  for (std::uint64_t i = 0; i < 4 * PieceCache::kMaxLongCacheBytes / piece_bytes; ++i) {
    std::string piece(piece_bytes, static_cast<char>('a' + i % 26));
    store(cache, piece, i * 0x9e3779b97f4a7c15ULL, std::vector<TokenId>(piece_bytes / 8, 70540));
    EXPECT_LE(cache.long_cache_bytes(), PieceCache::kMaxLongCacheBytes);
  }
  EXPECT_GT(cache.long_cache_bytes(), PieceCache::kMaxLongCacheBytes / 2);
}

// A long piece's memory is reused by the piece that replaces it only when it is about the
// size needed: were a 64 KB piece's buffers kept (and counted) under the 40-byte piece that
// replaced it, a few such slots would hold the whole budget and every other long piece
// would be refused for the rest of the thread.
TEST(PieceCache, ShortPieceGivesBackABigPiecesMemory) {
  PieceCache cache;
  const std::uint64_t hash = 0x1234567890abcdefULL;  // one slot for every piece below
  const std::string huge(PieceCache::kMaxLongPieceBytes, 'h');
  store(cache, huge, hash, std::vector<TokenId>(huge.size() / 8, 3));
  EXPECT_GE(cache.long_cache_bytes(), huge.size());
  const std::string small(40, 's');
  store(cache, small, hash, {1, 2});
  EXPECT_EQ(tokens_found(cache, small, hash), (std::vector<TokenId>{1, 2}));
  EXPECT_TRUE(tokens_found(cache, huge, hash).empty());
  EXPECT_GE(cache.long_cache_bytes(), small.size());
  EXPECT_LT(cache.long_cache_bytes(), 1024u);
}

// A piece refused because the budget is spent stays refused when it is offered to its
// slot again: the refusal gives its memory back and the count forgets nothing it holds.
TEST(PieceCache, RefusedPieceStaysRefused) {
  PieceCache cache;
  const std::size_t piece_bytes = PieceCache::kMaxLongPieceBytes;
  const std::vector<TokenId> tokens(piece_bytes / 8, 70540);
  std::string refused;
  std::uint64_t refused_hash = 0;
  for (std::uint64_t i = 1; i <= 2 * PieceCache::kMaxLongCacheBytes / piece_bytes && refused.empty(); ++i) {
    std::string piece(piece_bytes, static_cast<char>('a' + i % 26));
    piece[0] = static_cast<char>(i);
    const std::uint64_t hash = i;  // a slot of its own for each
    store(cache, piece, hash, tokens);
    if (tokens_found(cache, piece, hash).empty()) {
      refused = piece;
      refused_hash = hash;
    }
  }
  ASSERT_FALSE(refused.empty()) << "the budget never ran out";
  const std::size_t held = cache.long_cache_bytes();
  for (int attempt = 0; attempt < 10; ++attempt) {
    store(cache, refused, refused_hash, tokens);
    EXPECT_TRUE(tokens_found(cache, refused, refused_hash).empty()) << "attempt " << attempt;
    EXPECT_EQ(cache.long_cache_bytes(), held);
  }
}

// Warm, cleared and interleaved calls of both encodings on one thread, and calls on a
// fresh thread, all return the same ids for the same text.
TEST(PieceCache, NeverChangesWhatAnEncodingReturns) {
  for (const char* category : {"adversarial", "multilingual"}) {
    const std::string text = read_corpus(category);
    std::vector<TokenId> cl100k_first;
    std::vector<TokenId> o200k_first;
    Encoding::clear_thread_caches();
    Encoding::get(EncodingId::cl100k_base).encode(text, cl100k_first);
    Encoding::get(EncodingId::o200k_base).encode(text, o200k_first);
    ASSERT_NE(cl100k_first, o200k_first);
    for (int round = 0; round < 3; ++round) {
      if (round == 2) Encoding::clear_thread_caches();
      std::vector<TokenId> cl100k_again;
      std::vector<TokenId> o200k_again;
      Encoding::get(EncodingId::o200k_base).encode(text, o200k_again);
      Encoding::get(EncodingId::cl100k_base).encode(text, cl100k_again);
      EXPECT_EQ(cl100k_again, cl100k_first) << category << " round " << round;
      EXPECT_EQ(o200k_again, o200k_first) << category << " round " << round;
      EXPECT_EQ(Encoding::get(EncodingId::cl100k_base).count(text), cl100k_first.size());
    }
    std::vector<TokenId> on_fresh_thread;
    std::thread([&] { Encoding::get(EncodingId::cl100k_base).encode(text, on_fresh_thread); }).join();
    EXPECT_EQ(on_fresh_thread, cl100k_first) << category;
  }
}

}  // namespace
