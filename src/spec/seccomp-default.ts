// The built-in RuntimeDefault seccomp profile, in the containers/common profile format.
//
// The data is containers/common's default profile (pkg/seccomp/seccomp.json, as vendored by
// CRI-O through go.podman.io/common): deny by default with ENOSYS, so that programs fall back
// from syscalls the profile does not know yet; deny a few dangerous syscalls with EPERM; allow
// the common set; allow the privileged ones only to containers holding the capability. CRI-O
// (internal/config/seccomp DefaultProfile) then takes clone, clone3 and unshare out of the
// unconditional allow list. CRIO_NAMESPACE_RULES below put them back:
// - with CAP_SYS_ADMIN all three are allowed as before;
// - without it, clone is allowed only when no CLONE_NEW* flag is set, and fails with EPERM when
//   one is; clone3 fails with ENOSYS (its flags sit in a struct seccomp cannot read, and ENOSYS
//   makes glibc fall back to clone); unshare falls to the default action.
// The syscall lists are kept as space-separated strings to keep this module small.
import type { SeccompProfile, SeccompProfileRule } from "./types.ts";

const EPERM = 1;
const EINVAL = 22;
const ENOSYS = 38;

const list = (s: string) => s.trim().split(/\s+/);

/** The syscalls containers/common allows unconditionally (CRI-O removes clone, clone3, unshare). */
const ALLOWED = list(`
  _llseek _newselect accept accept4 access adjtimex alarm bind brk capget capset chdir chmod chown
  chown32 clock_adjtime clock_adjtime64 clock_getres clock_getres_time64 clock_gettime
  clock_gettime64 clock_nanosleep clock_nanosleep_time64 clone clone3 close close_range connect
  copy_file_range creat dup dup2 dup3 epoll_create epoll_create1 epoll_ctl epoll_ctl_old
  epoll_pwait epoll_pwait2 epoll_wait epoll_wait_old eventfd eventfd2 execve execveat exit
  exit_group faccessat faccessat2 fadvise64 fadvise64_64 fallocate fanotify_init fanotify_mark
  fchdir fchmod fchmodat fchmodat2 fchown fchown32 fchownat fcntl fcntl64 fdatasync fgetxattr
  flistxattr flock fork fremovexattr fsconfig fsetxattr fsmount fsopen fspick fstat fstat64
  fstatat64 fstatfs fstatfs64 fsync ftruncate ftruncate64 futex futex_requeue futex_time64
  futex_wait futex_waitv futex_wake futimesat get_mempolicy get_robust_list get_thread_area getcpu
  getcwd getdents getdents64 getegid getegid32 geteuid geteuid32 getgid getgid32 getgroups
  getgroups32 getitimer getpeername getpgid getpgrp getpid getppid getpriority getrandom getresgid
  getresgid32 getresuid getresuid32 getrlimit getrusage getsid getsockname getsockopt gettid
  gettimeofday getuid getuid32 getxattr inotify_add_watch inotify_init inotify_init1
  inotify_rm_watch io_cancel io_destroy io_getevents io_setup io_submit ioctl ioprio_get
  ioprio_set ipc keyctl kill landlock_add_rule landlock_create_ruleset landlock_restrict_self
  lchown lchown32 lgetxattr link linkat listen listxattr llistxattr lremovexattr lseek lsetxattr
  lstat lstat64 madvise mbind membarrier memfd_create memfd_secret mincore mkdir mkdirat mknod
  mknodat mlock mlock2 mlockall mmap mmap2 mount mount_setattr move_mount mprotect mq_getsetattr
  mq_notify mq_open mq_timedreceive mq_timedreceive_time64 mq_timedsend mq_timedsend_time64
  mq_unlink mremap msgctl msgget msgrcv msgsnd msync munlock munlockall munmap name_to_handle_at
  nanosleep newfstatat open open_tree openat openat2 pause pidfd_getfd pidfd_open
  pidfd_send_signal pipe pipe2 pivot_root pkey_alloc pkey_free pkey_mprotect poll ppoll
  ppoll_time64 prctl pread64 preadv preadv2 prlimit64 process_mrelease process_vm_readv
  process_vm_writev pselect6 pselect6_time64 ptrace pwrite64 pwritev pwritev2 read readahead
  readlink readlinkat readv reboot recv recvfrom recvmmsg recvmmsg_time64 recvmsg remap_file_pages
  removexattr rename renameat renameat2 restart_syscall rmdir rseq rt_sigaction rt_sigpending
  rt_sigprocmask rt_sigqueueinfo rt_sigreturn rt_sigsuspend rt_sigtimedwait rt_sigtimedwait_time64
  rt_tgsigqueueinfo sched_get_priority_max sched_get_priority_min sched_getaffinity sched_getattr
  sched_getparam sched_getscheduler sched_rr_get_interval sched_rr_get_interval_time64
  sched_setaffinity sched_setattr sched_setparam sched_setscheduler sched_yield seccomp select
  semctl semget semop semtimedop semtimedop_time64 send sendfile sendfile64 sendmmsg sendmsg sendto
  set_mempolicy set_robust_list set_thread_area set_tid_address setfsgid setfsgid32 setfsuid
  setfsuid32 setgid setgid32 setgroups setgroups32 setitimer setns setpgid setpriority setregid
  setregid32 setresgid setresgid32 setresuid setresuid32 setreuid setreuid32 setrlimit setsid
  setsockopt setuid setuid32 setxattr shmat shmctl shmdt shmget shutdown sigaltstack signal
  signalfd signalfd4 sigprocmask sigreturn socketcall socketpair splice stat stat64 statfs
  statfs64 statx symlink symlinkat sync sync_file_range syncfs sysinfo syslog tee tgkill time
  timer_create timer_delete timer_getoverrun timer_gettime timer_gettime64 timer_settime
  timer_settime64 timerfd_create timerfd_gettime timerfd_gettime64 timerfd_settime
  timerfd_settime64 times tkill truncate truncate64 ugetrlimit umask umount umount2 uname unlink
  unlinkat unshare utime utimensat utimensat_time64 utimes vfork wait4 waitid waitpid write writev
`);

/** Obsolete or dangerous syscalls denied with EPERM even though the default is ENOSYS. */
const DENIED = list(`
  bdflush cachestat io_pgetevents io_pgetevents_time64 kexec_file_load kexec_load map_shadow_stack
  migrate_pages move_pages nfsservctl nice oldfstat oldlstat oldolduname oldstat olduname
  pciconfig_iobase pciconfig_read pciconfig_write sgetmask ssetmask swapoff swapon syscall sysfs
  uselib userfaultfd ustat vm86 vm86old vmsplice
`);

const allow = (names: string[], rule: Partial<SeccompProfileRule> = {}): SeccompProfileRule => ({
  names,
  action: "SCMP_ACT_ALLOW",
  ...rule,
});
const errno = (names: string[], ret: number, rule: Partial<SeccompProfileRule> = {}): SeccompProfileRule => ({
  names,
  action: "SCMP_ACT_ERRNO",
  errnoRet: ret,
  ...rule,
});
const onArch = (...arches: string[]) => ({ includes: { arches } });
/** Allowed with the capability, EPERM without it. */
const gated = (cap: string, names: string[]): SeccompProfileRule[] => [
  allow(names, { includes: { caps: [cap] } }),
  errno(names, EPERM, { excludes: { caps: [cap] } }),
];
const arg = (index: number, op: string, value: number, valueTwo = 0) => ({ index, value, valueTwo, op });

const AF_NETLINK = 16;
const NETLINK_AUDIT = 9;
const AF_ALG = 38;
const AF_VSOCK = 40;

/** PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32, and 0xffffffff (query). */
const PERSONALITIES = [0x0, 0x8, 0x20000, 0x20008, 0xffffffff];

/** CLONE_NEWNS, CLONE_NEWCGROUP, CLONE_NEWUTS, CLONE_NEWIPC, CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET. */
export const CLONE_NAMESPACE_FLAGS = [0x00020000, 0x02000000, 0x04000000, 0x08000000, 0x10000000, 0x20000000, 0x40000000];
/** All of CLONE_NAMESPACE_FLAGS or-ed together (0x7e020000). */
export const CLONE_NAMESPACE_MASK = CLONE_NAMESPACE_FLAGS.reduce((a, b) => a + b, 0);

const S390 = ["s390", "s390x"];

/** clone's flags are its first argument, except on s390 where the first two are swapped. */
function cloneRules(argIndex: number, arches: "s390" | "other"): SeccompProfileRule[] {
  const where = (caps: string[]): Pick<SeccompProfileRule, "includes" | "excludes"> =>
    arches === "s390" ? { includes: { arches: S390 }, excludes: { caps } } : { excludes: { caps, arches: S390 } };
  return [
    allow(["clone"], { args: [arg(argIndex, "SCMP_CMP_MASKED_EQ", CLONE_NAMESPACE_MASK, 0)], ...where(["CAP_SYS_ADMIN"]) }),
    ...CLONE_NAMESPACE_FLAGS.map((flag) =>
      errno(["clone"], EPERM, { args: [arg(argIndex, "SCMP_CMP_MASKED_EQ", flag, flag)], ...where(["CAP_SYS_ADMIN"]) }),
    ),
  ];
}

/** CRI-O's replacement for the unconditional clone/clone3/unshare allowance. */
const CRIO_NAMESPACE_RULES: SeccompProfileRule[] = [
  allow(["clone", "clone3", "unshare"], { includes: { caps: ["CAP_SYS_ADMIN"] } }),
  ...cloneRules(0, "other"),
  ...cloneRules(1, "s390"),
  errno(["clone3"], ENOSYS, { excludes: { caps: ["CAP_SYS_ADMIN"] } }),
];

const NAMESPACE_SYSCALLS = new Set(["clone", "clone3", "unshare"]);

function build(): SeccompProfile {
  return {
    defaultAction: "SCMP_ACT_ERRNO",
    defaultErrnoRet: ENOSYS,
    archMap: [
      { architecture: "SCMP_ARCH_X86_64", subArchitectures: ["SCMP_ARCH_X86", "SCMP_ARCH_X32"] },
      { architecture: "SCMP_ARCH_AARCH64", subArchitectures: ["SCMP_ARCH_ARM"] },
      { architecture: "SCMP_ARCH_MIPS64", subArchitectures: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64N32"] },
      { architecture: "SCMP_ARCH_MIPS64N32", subArchitectures: ["SCMP_ARCH_MIPS", "SCMP_ARCH_MIPS64"] },
      { architecture: "SCMP_ARCH_MIPSEL64", subArchitectures: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64N32"] },
      { architecture: "SCMP_ARCH_MIPSEL64N32", subArchitectures: ["SCMP_ARCH_MIPSEL", "SCMP_ARCH_MIPSEL64"] },
      { architecture: "SCMP_ARCH_S390X", subArchitectures: ["SCMP_ARCH_S390"] },
    ],
    syscalls: [
      errno(DENIED, EPERM),
      allow(ALLOWED.filter((n) => !NAMESPACE_SYSCALLS.has(n))),
      ...PERSONALITIES.map((p) => allow(["personality"], { args: [arg(0, "SCMP_CMP_EQ", p)] })),
      allow(["sync_file_range2", "swapcontext"], onArch("ppc64le")),
      allow(["arm_fadvise64_64", "arm_sync_file_range", "breakpoint", "cacheflush", "set_tls", "sync_file_range2"], onArch("arm", "arm64")),
      allow(["arch_prctl"], onArch("amd64", "x32")),
      allow(["modify_ldt"], onArch("amd64", "x32", "x86")),
      allow(["s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr"], onArch("s390", "s390x")),
      allow(["riscv_flush_icache"], onArch("riscv64")),
      ...gated("CAP_DAC_READ_SEARCH", ["open_by_handle_at"]),
      allow(["bpf", "lookup_dcookie", "perf_event_open", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns"], {
        includes: { caps: ["CAP_SYS_ADMIN"] },
      }),
      errno(["lookup_dcookie", "quotactl", "quotactl_fd", "setdomainname", "sethostname", "setns"], EPERM, {
        excludes: { caps: ["CAP_SYS_ADMIN"] },
      }),
      ...gated("CAP_SYS_CHROOT", ["chroot"]),
      ...gated("CAP_SYS_MODULE", ["delete_module", "finit_module", "init_module", "query_module"]),
      ...gated("CAP_SYS_PACCT", ["acct"]),
      ...gated("CAP_SYS_PTRACE", ["kcmp", "process_madvise"]),
      ...gated("CAP_SYS_RAWIO", ["ioperm", "iopl"]),
      ...gated("CAP_SYS_TIME", ["clock_settime", "clock_settime64", "settimeofday", "stime"]),
      ...gated("CAP_SYS_TTY_CONFIG", ["vhangup"]),
      // socket: no AF_VSOCK or AF_ALG; audit netlink sockets only with CAP_AUDIT_WRITE.
      errno(["socket"], EPERM, { args: [arg(0, "SCMP_CMP_EQ", AF_VSOCK)] }),
      errno(["socket"], EPERM, { args: [arg(0, "SCMP_CMP_EQ", AF_ALG)] }),
      errno(["socket"], EINVAL, {
        args: [arg(0, "SCMP_CMP_EQ", AF_NETLINK), arg(2, "SCMP_CMP_EQ", NETLINK_AUDIT)],
        excludes: { caps: ["CAP_AUDIT_WRITE"] },
      }),
      allow(["socket"], {
        args: [arg(0, "SCMP_CMP_EQ", AF_NETLINK), arg(2, "SCMP_CMP_NE", NETLINK_AUDIT)],
        excludes: { caps: ["CAP_AUDIT_WRITE"] },
      }),
      allow(["socket"], { args: [arg(0, "SCMP_CMP_NE", AF_NETLINK)], excludes: { caps: ["CAP_AUDIT_WRITE"] } }),
      allow(["socket"], { args: [arg(0, "SCMP_CMP_NE", AF_VSOCK)], includes: { caps: ["CAP_AUDIT_WRITE"] } }),
      // bpf and perf_event_open: CAP_SYS_ADMIN (above) or their own capability.
      errno(["bpf"], EPERM, { excludes: { caps: ["CAP_SYS_ADMIN", "CAP_BPF"] } }),
      allow(["bpf"], { includes: { caps: ["CAP_BPF"] } }),
      errno(["perf_event_open"], EPERM, { excludes: { caps: ["CAP_SYS_ADMIN", "CAP_PERFMON"] } }),
      allow(["perf_event_open"], { includes: { caps: ["CAP_PERFMON"] } }),
      ...CRIO_NAMESPACE_RULES,
    ],
  };
}

/** A fresh copy of the built-in RuntimeDefault profile (callers may change it). */
export function defaultSeccompProfile(): SeccompProfile {
  return build();
}
