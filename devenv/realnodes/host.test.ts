import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { cgroupMounts } from "./host.js";

describe("node host", () => {
  it("finds every cgroup hierarchy of a hybrid v1/v2 machine in mountinfo", () => {
    const mountinfo = [
      "25 1 0:23 / /sys rw,nosuid - sysfs sysfs rw",
      "30 25 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755",
      "31 30 0:27 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu",
      "32 30 0:28 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory",
      "33 30 0:29 / /sys/fs/cgroup/systemd rw - cgroup cgroup rw,name=systemd",
      "34 30 0:30 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw",
    ].join("\n");
    assert.deepEqual(cgroupMounts(mountinfo), [
      "/sys/fs/cgroup/cpu",
      "/sys/fs/cgroup/memory",
      "/sys/fs/cgroup/systemd",
      "/sys/fs/cgroup/unified",
    ]);
  });
});
