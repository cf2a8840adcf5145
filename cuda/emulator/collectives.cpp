/* Warp collectives: the meeting point (warp_collective) and the register-only operations
 * (__syncwarp, shuffles, ballot, match). The PTX matrix operations are in ptx.cpp. */
#include <string>

#include "emu_internal.h"

namespace llmk_emu {

const char* kind_name(int kind) {
  static const char* names[kKindCount] = {"__syncwarp", "__shfl_sync",      "__ballot_sync",   "__match_any_sync",
                                          "ldmatrix",   "ldmatrix.trans",   "mma.sync",        "mma.sp"};
  return kind >= 0 && kind < kKindCount ? names[kind] : "?";
}

const uint64_t* warp_collective(Site site, int kind, unsigned mask, const uint64_t* in, int words) {
  ThreadCtx& t = current_thread();
  const unsigned bit = 1u << t.lane;
  if (!(mask & bit)) {
    fail_kernel(std::string(kind_name(kind)) + " at " + format_site(site) + " with mask " + format_lanes(mask) +
                ", which leaves out the calling lane " + std::to_string(t.lane));
  }
  WarpSlot& w = *current_warp_slot();
  if (w.kind < 0) {
    w.kind = kind;
    w.mask = mask;
    w.arrived = 0;
    w.site = site;
  } else if (w.kind != kind || w.mask != mask) {
    fail_kernel("warp " + std::to_string(t.warp) + ": lane " + std::to_string(t.lane) + " reached " +
                kind_name(kind) + " at " + format_site(site) + " (mask " + format_lanes(mask) + ") while lanes " +
                format_lanes(w.arrived) + " wait at " + kind_name(w.kind) + " at " + format_site(w.site) + " (mask " +
                format_lanes(w.mask) + ")");
  }
  for (int i = 0; i < words; ++i) w.in[t.lane][i] = in[i];  // no memcpy: bookkeeping stays invisible to TSan
  w.arrived |= bit;
  const bool reads_memory = kind == kLdmatrix || kind == kLdmatrixTrans;
  if (reads_memory || kind == kSyncwarp) tsan_release(&w.tsan_sync);
  const unsigned existing = lanes_in_current_warp();
  if (w.arrived == (mask & existing)) {
    if (reads_memory) tsan_acquire(&w.tsan_sync);  // the last lane reads on every lane's behalf
    const std::string err = compute_collective(w);
    if (!err.empty()) fail_kernel(std::string(kind_name(kind)) + " at " + format_site(site) + ": " + err);
    w.kind = -1;
    wake_lanes(w.arrived);
  } else {
    t.state = ThreadState::kWarp;
    t.site = site;
    yield_current();
  }
  if (kind == kSyncwarp) tsan_acquire(&w.tsan_sync);
  return w.out[t.lane];
}

void syncwarp(Site site, unsigned mask) { warp_collective(site, kSyncwarp, mask, nullptr, 0); }

uint64_t shuffle(Site site, unsigned mask, int mode, uint64_t value, int b, int c) {
  const uint64_t in[4] = {value, static_cast<uint64_t>(mode), static_cast<uint64_t>(static_cast<uint32_t>(b)),
                          static_cast<uint64_t>(static_cast<uint32_t>(c))};
  return warp_collective(site, kShuffle, mask, in, 4)[0];
}

unsigned ballot(Site site, unsigned mask, int pred) {
  const uint64_t in[1] = {static_cast<uint64_t>(pred != 0)};
  return static_cast<unsigned>(warp_collective(site, kBallot, mask, in, 1)[0]);
}

unsigned match_any(Site site, unsigned mask, uint64_t value) {
  const uint64_t in[1] = {value};
  return static_cast<unsigned>(warp_collective(site, kMatchAny, mask, in, 1)[0]);
}

namespace {

/* PTX shfl.sync: c packs the segment mask (bits 8-12) and the clamp (bits 0-4). */
std::string compute_shuffle(WarpSlot& w) {
  const int first = __builtin_ctz(w.arrived);
  const int mode = static_cast<int>(w.in[first][1]);
  const uint32_t c = static_cast<uint32_t>(w.in[first][3]);
  for (int lane = 0; lane < 32; ++lane) {
    if (!(w.arrived & (1u << lane))) continue;
    if (static_cast<int>(w.in[lane][1]) != mode || static_cast<uint32_t>(w.in[lane][3]) != c)
      return "lanes disagree on the shuffle kind or width";
    const uint32_t b = static_cast<uint32_t>(w.in[lane][2]);
    const int segmask = static_cast<int>((c >> 8) & 0x1f);
    const int max_lane = (lane & segmask) | (static_cast<int>(c & 0x1f) & ~segmask);
    const int min_lane = lane & segmask;
    int j = lane;
    bool in_range = false;
    switch (mode) {
      case kShflUp: j = lane - static_cast<int>(b); in_range = j >= max_lane; break;
      case kShflDown: j = lane + static_cast<int>(b); in_range = j <= max_lane; break;
      case kShflBfly: j = lane ^ static_cast<int>(b & 0x1f); in_range = j <= max_lane; break;
      default: j = min_lane | (static_cast<int>(b & 0x1f) & ~segmask); in_range = j <= max_lane; break;
    }
    if (!in_range) j = lane;
    if (!(w.arrived & (1u << j)))
      return "lane " + std::to_string(lane) + " reads lane " + std::to_string(j) + ", which is not in the mask";
    w.out[lane][0] = w.in[j][0];
  }
  return std::string();
}

}  // namespace

std::string compute_collective(WarpSlot& w) {
  switch (w.kind) {
    case kSyncwarp:
      return std::string();
    case kShuffle:
      return compute_shuffle(w);
    case kBallot: {
      unsigned bits = 0;
      for (int l = 0; l < 32; ++l)
        if ((w.arrived & (1u << l)) && w.in[l][0]) bits |= 1u << l;
      // Only the participants' records: a lane outside the mask may not have read its last result.
      for (int l = 0; l < 32; ++l)
        if (w.arrived & (1u << l)) w.out[l][0] = bits;
      return std::string();
    }
    case kMatchAny:
      for (int l = 0; l < 32; ++l) {
        if (!(w.arrived & (1u << l))) continue;
        unsigned peers = 0;
        for (int j = 0; j < 32; ++j)
          if ((w.arrived & (1u << j)) && w.in[j][0] == w.in[l][0]) peers |= 1u << j;
        w.out[l][0] = peers;
      }
      return std::string();
    default:
      return compute_matrix_collective(w);
  }
}

}  // namespace llmk_emu
