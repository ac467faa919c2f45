// pinned_images: images the kubelet's garbage collector must not remove. CRI-O accepts three
// pattern forms and always pins the pause image:
//   "registry.k8s.io/pause:3.10"   exact name
//   "quay.io/org/*"                prefix glob (a single trailing *)
//   "*busybox*"                    keyword glob (* at both ends)
// Any other use of * is taken literally, as CRI-O does.

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

export function compilePinnedPattern(pattern: string): RegExp {
  if (pattern.length > 1 && pattern.startsWith("*") && pattern.endsWith("*")) {
    return new RegExp(escapeRegExp(pattern.slice(1, -1)));
  }
  if (pattern.endsWith("*")) return new RegExp(`^${escapeRegExp(pattern.slice(0, -1))}`);
  return new RegExp(`^${escapeRegExp(pattern)}$`);
}

export class PinnedImages {
  private readonly patterns: RegExp[];
  constructor(patterns: readonly string[], pauseImage: string) {
    this.patterns = [...patterns, ...(pauseImage ? [pauseImage] : [])].filter((p) => p !== "").map(compilePinnedPattern);
  }

  /** Whether an image with these names (repo tags and digests) is pinned. */
  isPinned(names: readonly string[]): boolean {
    return names.some((n) => this.patterns.some((re) => re.test(n)));
  }
}
