#pragma once
// A call record with its ledger key as a compact, versioned binary payload: what one frame
// of a hand-off journal carries (journal.hpp). Every field of CallRecord is written, the
// optional ones with a presence flag, so a record replayed from a journal is the record
// the loop handed over, byte for byte.
#include "ledger/ledger.hpp"

#include <optional>
#include <string>
#include <string_view>

namespace turnout::ledger {

// Appends the payload of `keyed` to `out`.
void encode_record(const KeyedRecord& keyed, std::string& out);

// The record a payload holds; nullopt for a payload that is cut short, too long, or of a
// version this build does not read.
std::optional<KeyedRecord> decode_record(std::string_view payload);

}  // namespace turnout::ledger
