// Package agentapi is the contract between an agent and the coordinator:
// the routes of the agent's HTTP API, the bodies they take and answer, the
// rule for revision names and the bearer-token credentials. The agent
// serves it (package agent) and the coordinator calls it (package
// rollback); neither imports the other, as they talk across a network.
//
// # Reading
//
// With the read credential (the bearer token in the agent's
// http.token_file, or a client certificate its TLS listener verified):
//
//   - GET /api/v1/checks -> 200 Checks: every check's latest result and
//     Nagios soft/hard state;
//   - GET /api/v1/checks/NAME -> 200 CheckStatus, 404 for no such check;
//   - GET /api/v1/snapshot -> 200 Snapshot: the gauges a push compares;
//   - GET /metrics: the Prometheus text exposition;
//   - GET /api/v1/passive: the passive targets' queues.
//
// GET /healthz needs nothing. A request without a token is answered 401
// "token required", one with another token 401 "invalid token".
//
// # Deploying
//
// Layout, under deploy.root: releases/<revision>/ is an unpacked artifact;
// current and previous are symlinks to releases/<revision>; meta/<revision>.json
// records the sha256 a release was unpacked from and its order. Entries with
// a '~' in their name are temporary (no revision can contain one) and are
// removed at start and before each deploy.
//
// Credentials: only the bearer token in deploy.token_file may deploy or roll
// back; the HTTP API's read token or a client certificate gets 403 there,
// no or an unknown credential 401. GET /api/v1/release takes either.
//
//   - GET /api/v1/release -> 200 {"current":"R2","previous":"R1","releases":["R1","R2"]}:
//     releases oldest first (in the order they were unpacked), current and
//     previous "" when there is none.
//   - POST /api/v1/deploy {"revision":"R","artifact_url":"http://...","sha256":"<hex>"}:
//     fetches the URL with "Authorization: Bearer <deploy token>", at most
//     deploy.max_artifact_bytes, checks its sha256 before unpacking anything,
//     unpacks the tar.gz into a temporary dir in releases/ and renames it to
//     releases/R, runs pre_activate, points current at it with one rename(2)
//     (previous at the release it replaces), runs post_activate, and removes
//     all but the newest deploy.keep releases (never current or previous).
//     200 with the release JSON. Deploying the current revision is a 200
//     no-op; an existing releases/R whose recorded sha256 matches is reused
//     without a download (the retry after a crash); one that does not match,
//     or has none, is unpacked again.
//   - POST /api/v1/rollback {"to":"R1"} (body optional; default: previous)
//     points current at the target with one rename(2), previous at the
//     release it replaces, runs post_activate; 200 with the release JSON,
//     a no-op when the target is current already, 404 when it is not unpacked.
//
// Hooks run without a shell, in the release's dir, with IMMUNE_REVISION,
// IMMUNE_RELEASE_DIR and IMMUNE_PREVIOUS_REVISION added to the agent's
// environment, each for at most deploy.hook_timeout, their process group
// killed past it. A failing pre_activate leaves current unchanged; a deploy's
// failing post_activate switches current and previous back, while a
// rollback's leaves current on the rollback target (a retry is then a no-op,
// not a switch back to the bad release). Each is a 500 whose text says which
// hook failed, how, and which release is current. Once the
// hooks start, a coordinator hanging up does not stop them: the switch is
// carried through or undone, never left halfway.
//
// Refused artifacts are a 422 and leave nothing behind: a sha256 other than
// the one asked for, more than max_artifact_bytes, not a tar.gz, or entries
// that could reach outside the release: absolute names, ".." in a name,
// symlinks that are absolute or whose target has ".." after a name or more
// leading ".." than the link is deep, hard links to anything but a regular
// file already in the artifact, entries inside a symlink or a file, and
// devices, fifos and every other kind but files, dirs and symlinks; and
// artifacts that unpack to more than deploy.max_unpacked_bytes of files or
// deploy.max_entries files, dirs and links (dirs implied by names count),
// refused at the entry that crosses the limit, before it is written. A
// deploy that would leave less than deploy.min_free_bytes free on the
// root's filesystem (checked against the artifact's size before unpacking,
// then entry by entry) is a 507 and leaves nothing behind either. File
// modes keep their permission bits only (no setuid or setgid), and a
// directory its sticky bit.
//
// Other answers: 400 for a bad request body (revision names are
// [A-Za-z0-9._-]{1,64} but not "." or ".." and not starting with '-', see
// ValidRevision; sha256 is 64 hex digits; the URL is http or https), 409
// while another deploy or rollback runs (with Retry-After: they are not
// queued, as a queued push could run after the coordinator gave up on it)
// or when R is current but was unpacked from another sha256, 502 when the
// artifact cannot be fetched.
package agentapi
