// Kernel attach primitives that leave nothing behind. Every probe made here lives exactly as long
// as one file descriptor of ours: when the descriptor closes (normally, on error, or because the
// kernel reaps a SIGKILLed tracer) the kernel drops the probe. Nothing is ever written to tracefs
// (uprobe_events / kprobe_events), whose entries would outlive us.
//
// Uprobes use a BPF uprobe-multi link where the kernel has one (Linux >= 6.6): detaching it waits
// for one grace period, and links closed concurrently share it. Elsewhere they use the perf uprobe
// PMU (perf_event_open with the "uprobe" event type), whose events also vanish with their
// descriptor. Kprobes use the perf kprobe PMU.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lockkit {

class ElfFile;

// The file offset of linked address `vaddr` in `elf` (uprobes are placed by file offset).
// Throws ToolError when no load segment holds it.
uint64_t file_offset_of(const ElfFile& elf, uint64_t vaddr);

// The attach type number of BPF_TRACE_UPROBE_MULTI (the system's uapi headers may predate it).
constexpr int kAttachUprobeMulti = 48;

// Whether the kernel creates uprobe-multi links, asked with `prog_fd` (a program loaded with
// expected attach type kAttachUprobeMulti) on a path that cannot carry probes.
bool uprobe_multi_supported(int prog_fd);

// One uprobe-multi link placing `prog_fd` at `offsets` of `path`, only for process `pid` (0: all).
// `cookies`, when not empty, holds one attach cookie per offset (bpf_get_attach_cookie() in the
// program). Returns the link descriptor, or -errno.
int open_uprobe_multi(int prog_fd, const std::string& path, const std::vector<uint64_t>& offsets,
                      bool on_return, pid_t pid, const std::vector<uint64_t>& cookies = {});

// One perf uprobe (type from /sys/bus/event_source/devices/uprobe) at `offset` of `path` for `pid`
// (-1: all) running `prog_fd`, enabled. With a non-zero `cookie` the program is attached through a
// BPF perf-event link that carries it (Linux >= 5.15); the link then holds the event, and its
// descriptor is the one returned. Returns the descriptor, or -errno.
int open_perf_uprobe(int prog_fd, const std::string& path, uint64_t offset, bool on_return, pid_t pid,
                     uint64_t cookie = 0);

// One perf kprobe on kernel function `fn` running `prog_fd`, enabled. Returns the descriptor or -errno.
int open_perf_kprobe(int prog_fd, const std::string& fn, bool on_return);

// Closes every descriptor, concurrently: each probe's removal waits for the kernel to quiesce
// (a grace period), and waits that overlap take the time of one. `on_wait` is called about every
// 100 ms while closes are still running, with the number left; it may print progress.
void close_concurrently(const std::vector<int>& fds, const std::function<void(size_t left)>& on_wait);

}  // namespace lockkit
