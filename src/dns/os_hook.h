// os_hook.h: the Linux OS hook that points the machine's DNS at p2proxy-client's resolver
// (systemd-resolved per-link DNS, or /etc/resolv.conf rewritten in place) and puts the
// original configuration back, also after a crash.
//
// resolv.conf mode, and why it survives a kill -9:
//   1. Before resolv.conf is touched, a backup goes to |state_dir|/dns-resolv.conf.backup
//      (0600, written to a temp file, fsync'd, renamed, directory fsync'd). It holds a small
//      header (target path, whether the file existed, its mode) then the original bytes and the
//      bytes we are about to write.
//   2. resolv.conf is rewritten in place (O_TRUNC + write + fsync), never renamed over: under
//      `ip netns exec` it is a bind mount and a rename would fail.
//   3. Restore writes the original back in place (or deletes the file if there was none), then
//      removes the backup. A later Install or Recover finds a backup left by a killed process
//      and does the same.
// Restore and Recover put the original back only while resolv.conf holds our bytes (or a
// prefix of them: a write cut short). If another program replaced it meanwhile (a DHCP client,
// NetworkManager), its newer file is kept, the backup is dropped, and a warning says so.
//
// A process-wide slot allows one installed hook per process, and in resolv.conf mode a flock
// on |state_dir|/dns-hook.lock, held for the hook's lifetime, stops a second process from
// "recovering" a live hook's backup. The kernel drops the lock when the process dies.
//
// resolved mode keeps no backup: per-link settings die with the TUN interface, and `resolvectl
// revert IFACE` undoes them while it lives.
//
// Not thread-safe: one thread owns an OsHook. Install, Recover and Restore block on file I/O
// and on resolvectl (each run bounded by options.command_timeout); call them at startup and
// shutdown, not on a busy loop.
#ifndef P2PROXY_DNS_OS_HOOK_H_
#define P2PROXY_DNS_OS_HOOK_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "base/address.h"
#include "base/ip_prefix.h"

namespace p2proxy::dns {

class OsHook {
 public:
  enum class Mode { kAuto, kResolved, kResolvConf, kNone };
  static constexpr absl::Duration kDefaultCommandTimeout = absl::Seconds(5);

  struct Options {
    Mode mode = Mode::kAuto;
    // The TUN interface, for systemd-resolved per-link DNS. Required in resolved mode.
    std::string interface_name;
    // Where our resolver listens, e.g. 100.96.128.1. Required unless mode is kNone.
    base::IpAddress resolver;
    // resolv.conf can only name port 53: kResolvConf with another port is an error. resolved
    // mode passes "ADDR:PORT" to resolvectl when it is not 53.
    uint16_t resolver_port = 53;
    // Private zones, e.g. "example.internal" -> resolved domain "~example.internal". Empty in
    // resolved mode means every query goes to our resolver ("~." and default-route true).
    std::vector<std::string> routing_domains;
    // Absolute path.
    std::string resolv_conf_path = "/etc/resolv.conf";
    // Absolute path; created 0700 (missing parents 0755); the backup file in it is 0600.
    std::string state_dir = "/var/lib/p2proxy/client";
    // Where systemd-resolved keeps its files: kAuto looks for its io.systemd.Resolve socket
    // there and for resolv_conf_path being a symlink into it; resolved mode reads upstreams
    // from its resolv.conf. Tests point it at a temp dir.
    std::string systemd_resolve_dir = "/run/systemd/resolve";
    // run executes a command (argv[0] looked up in PATH) and returns OK on exit status 0, else
    // an error with its stderr. Empty: RunCommandWithTimeout with |command_timeout|. Tests
    // inject a fake.
    std::function<absl::Status(const std::vector<std::string>& argv)> run;
    // command_timeout bounds each resolvectl run by the default |run|, so a hung resolvectl
    // (systemd-resolved stuck, D-Bus not answering) cannot block start or shutdown: past it
    // the command's process group is killed and the step fails.
    absl::Duration command_timeout = kDefaultCommandTimeout;
    // has_program says whether |name| is an executable in PATH (kAuto asks about
    // "resolvectl"). Empty: ProgramInPath.
    std::function<bool(const std::string& name)> has_program;
  };

  // ModeName is "auto", "resolved", "resolv.conf" or "none"; ParseMode accepts those names
  // (for a --dns-hook flag) and fails with a message listing them.
  static absl::string_view ModeName(Mode mode);
  static absl::StatusOr<Mode> ParseMode(absl::string_view name);

  // ParseResolvConf returns the nameserver addresses of a resolv.conf text (IPv4 and IPv6,
  // port 53), in order and without duplicates. As glibc does, a line counts only if
  // "nameserver" starts it, and only the first word after it is read. Comments ('#' or ';' in
  // column one), malformed addresses (including IPv6 with a %scope), and |exclude| are skipped.
  static std::vector<base::SocketAddress> ParseResolvConf(
      absl::string_view text, const std::optional<base::IpAddress>& exclude = std::nullopt);

  // Recover restores resolv.conf from a backup in options.state_dir that a previous run left
  // behind (it was killed before it could restore), then removes the backup. Returns whether
  // it changed resolv.conf (wrote the original back, or deleted the file that run created).
  // Returns false when there is no backup, when resolv.conf already holds the original, or
  // when another program has replaced resolv.conf since (its file is kept). Fails, leaving the
  // backup in place, if the backup is unreadable or corrupt, if another process holds the
  // hook's lock, if a hook is installed in this process, or if resolv.conf cannot be written.
  static absl::StatusOr<bool> Recover(const Options& options);

  // Install runs Recover, then points the machine's DNS at options.resolver:
  //   kResolvConf: backs up the original (see the file comment), then rewrites resolv.conf
  //     in place to a comment naming p2proxy and the backup, "nameserver <resolver>", and the
  //     original's search/domain/options lines.
  //   kResolved: `resolvectl dns IFACE ADDR`, `resolvectl domain IFACE ~zone...`,
  //     `resolvectl default-route IFACE false`; if one fails, `resolvectl revert IFACE`.
  //   kAuto: kResolved when resolv_conf_path is a symlink into systemd_resolve_dir, resolvectl
  //     is in PATH and systemd_resolve_dir/io.systemd.Resolve exists; else kResolvConf.
  //   kNone: changes nothing (upstreams are still read from resolv_conf_path).
  // Fails, having changed nothing, on bad options (the message names the field), if a hook is
  // already installed in this process, or if a file or command fails (the message names it and
  // says what to do). The returned hook restores when destroyed.
  static absl::StatusOr<std::unique_ptr<OsHook>> Install(const Options& options);

  OsHook(const OsHook&) = delete;
  OsHook& operator=(const OsHook&) = delete;
  // ~OsHook calls Restore and logs (dns.hook_restore_failed) if it fails.
  ~OsHook();

  // upstreams are the machine's original resolvers (from the original resolv.conf, or from
  // systemd_resolve_dir/resolv.conf in resolved mode), port 53, never our own resolver.
  const std::vector<base::SocketAddress>& upstreams() const { return upstreams_; }
  // mode is the mode in effect: never kAuto.
  Mode mode() const { return mode_; }
  // backup_path is where resolv.conf mode keeps the original: |state_dir|/dns-resolv.conf.backup.
  static std::string BackupPath(const Options& options);

  // Restore puts things back: resolv.conf byte for byte, in place (or deleted if it did not
  // exist), then removes the backup; or `resolvectl revert IFACE` (an interface that is
  // already gone counts as reverted). Idempotent: after a success it does nothing. On failure
  // the backup stays, so a retry or the next run's Recover can finish the job.
  absl::Status Restore();

  // AbandonForTesting simulates a kill -9: the hook gives up its lock and the process-wide
  // slot without restoring anything, and Restore and the destructor then do nothing.
  void AbandonForTesting();

  // RunCommandWithTimeout is the default |run|: posix_spawnp, in a process group of its own,
  // with stdin and stdout on /dev/null. Fails with NotFound if argv[0] is not in PATH, else
  // with the exit status (or signal) and the first 4 KiB of its stderr ("exit status 1:
  // Failed to ..."); the caller names the whole command. If the command has not exited and
  // closed its stderr within |timeout|, its process group is killed (SIGKILL) and the child
  // reaped before it returns DeadlineExceeded ("resolvectl did not finish within 5s; killed
  // it"). A background process that keeps the command's stderr open counts as not finished.
  // Blocks the calling thread for at most |timeout| plus the time a SIGKILL takes.
  static absl::Status RunCommandWithTimeout(const std::vector<std::string>& argv,
                                            absl::Duration timeout);
  // RunCommand is RunCommandWithTimeout with kDefaultCommandTimeout.
  static absl::Status RunCommand(const std::vector<std::string>& argv);
  // ProgramInPath is the default |has_program|: an executable regular file |name| in $PATH.
  static bool ProgramInPath(const std::string& name);

 private:
  OsHook(Options options, Mode mode, std::vector<base::SocketAddress> upstreams, int lock_fd);

  // BackupState is resolv.conf mode's copy of what the backup file holds.
  struct BackupState {
    bool existed;
    uint32_t mode;
    std::string original;
    std::string ours;
  };

  // The Install steps of each mode, after the checks, the slot and Recover. On failure they
  // have changed nothing (resolv.conf mode: put the original back) and the caller gives back
  // the slot and |lock|; on success resolv.conf mode's hook owns |lock|.
  static absl::StatusOr<std::unique_ptr<OsHook>> InstallNone(const Options& options);
  static absl::StatusOr<std::unique_ptr<OsHook>> InstallResolved(
      const Options& options, std::vector<std::string> domains);
  static absl::StatusOr<std::unique_ptr<OsHook>> InstallResolvConf(const Options& options,
                                                                   int lock);

  absl::Status RestoreResolved();
  // Runner is options.run, or RunCommandWithTimeout with options.command_timeout.
  static std::function<absl::Status(const std::vector<std::string>&)> Runner(const Options& options);
  void ReleaseSlotAndLock();

  Options options_;
  Mode mode_;
  std::vector<base::SocketAddress> upstreams_;
  int lock_fd_;         // resolv.conf mode: the flock on dns-hook.lock; else -1
  bool done_ = false;   // restored (or abandoned): Restore is a no-op
  bool holds_slot_ = false;
  std::unique_ptr<BackupState> backup_;  // resolv.conf mode only
};

}  // namespace p2proxy::dns

#endif  // P2PROXY_DNS_OS_HOOK_H_
