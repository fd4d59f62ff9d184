#!/bin/sh
# weft-cni, shell edition: the same plugin protocol as dist/cni/weft, for hosts where starting
# node per pod costs too much. It forwards the whole invocation (CNI_* as headers, stdin as the
# body) to the agent's POST /v1/cni/exec, which runs the plugin's own parsing and conversion and
# answers with what to print: HTTP 200 = exit 0, 422 = a CNI error JSON and exit 1. Only an
# unreachable agent is decided here (code 11, try again later). Needs /bin/sh, sed and curl >= 7.76.
conf=$(cat)
if [ "$CNI_COMMAND" = VERSION ]; then
  printf '{"cniVersion":"1.0.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}\n'
  exit 0
fi
sock=$(printf '%s\n' "$conf" | sed -n 's/.*"agentSocket"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p')
sock=${sock:-/var/run/weft/agent.sock}
printf '%s' "$conf" | curl -sS --fail-with-body --max-time 120 --unix-socket "$sock" \
  -H "Content-Type: application/json" -H "CNI-Command: $CNI_COMMAND" \
  -H "CNI-ContainerID: $CNI_CONTAINERID" -H "CNI-Netns: $CNI_NETNS" -H "CNI-Ifname: $CNI_IFNAME" \
  -H "CNI-Args: $CNI_ARGS" -H "CNI-Path: $CNI_PATH" \
  --data-binary @- http://weft/v1/cni/exec 2>/dev/null
rc=$?
[ "$rc" -eq 0 ] && exit 0
[ "$rc" -eq 22 ] && exit 1
printf '{"cniVersion":"1.0.0","code":11,"msg":"cannot reach the weft agent at %s","details":"curl exit %s"}\n' "$sock" "$rc"
exit 1
