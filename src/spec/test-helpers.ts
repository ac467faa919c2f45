// Test helpers: turn plain JSON (numbers instead of bigints, nested messages partial) into CRI
// messages, so golden inputs and unit tests can be written as data.
import {
  Capability,
  ContainerConfig,
  HugepageLimit,
  IDMapping,
  Int64Value,
  KeyValue,
  LinuxContainerConfig,
  LinuxContainerResources,
  LinuxContainerSecurityContext,
  Mount,
  NamespaceOption,
} from "../proto/runtime-v1.ts";

type Json = Record<string, any>;

const big = (v: unknown) => (v === undefined ? undefined : BigInt(v as number | string));

export function criResources(j: Json | undefined): LinuxContainerResources | undefined {
  if (!j) return undefined;
  return LinuxContainerResources.create({
    ...j,
    cpuPeriod: big(j.cpuPeriod),
    cpuQuota: big(j.cpuQuota),
    cpuShares: big(j.cpuShares),
    memoryLimitInBytes: big(j.memoryLimitInBytes),
    memorySwapLimitInBytes: big(j.memorySwapLimitInBytes),
    oomScoreAdj: big(j.oomScoreAdj),
    hugepageLimits: (j.hugepageLimits ?? []).map((h: Json) => HugepageLimit.create({ pageSize: h.pageSize, limit: BigInt(h.limit) })),
  } as Partial<LinuxContainerResources>);
}

export function criSecurityContext(j: Json | undefined): LinuxContainerSecurityContext | undefined {
  if (!j) return undefined;
  return LinuxContainerSecurityContext.create({
    ...j,
    capabilities: j.capabilities ? Capability.create(j.capabilities) : undefined,
    namespaceOptions: j.namespaceOptions ? NamespaceOption.create(j.namespaceOptions) : undefined,
    runAsUser: j.runAsUser !== undefined ? Int64Value.create({ value: BigInt(j.runAsUser) }) : undefined,
    runAsGroup: j.runAsGroup !== undefined ? Int64Value.create({ value: BigInt(j.runAsGroup) }) : undefined,
    supplementalGroups: (j.supplementalGroups ?? []).map((g: number) => BigInt(g)),
  } as Partial<LinuxContainerSecurityContext>);
}

export function criMount(j: Json): Mount {
  return Mount.create({
    ...j,
    uidMappings: (j.uidMappings ?? []).map((m: Json) => IDMapping.create(m)),
    gidMappings: (j.gidMappings ?? []).map((m: Json) => IDMapping.create(m)),
  });
}

export function criContainerConfig(j: Json): ContainerConfig {
  return ContainerConfig.create({
    ...j,
    envs: (j.envs ?? []).map((e: Json) => KeyValue.create(e)),
    mounts: (j.mounts ?? []).map(criMount),
    linux: j.linux
      ? LinuxContainerConfig.create({
          resources: criResources(j.linux.resources),
          securityContext: criSecurityContext(j.linux.securityContext),
        })
      : undefined,
  } as Partial<ContainerConfig>);
}
