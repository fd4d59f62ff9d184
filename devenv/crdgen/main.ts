import { generatedFiles, writeFiles } from "./generate.js";

/**
 * `make generate`: writes crds/, charts/weft/crds/ and deploy/weft.yaml from api/. Writes only
 * files whose text changes, so a second run changes nothing. A failure (a field without a doc
 * comment, a schema naming a field the type lacks) throws with the place in api/ it concerns.
 */
const changed = writeFiles(await generatedFiles());
console.log(changed.length ? `generated: ${changed.join(", ")}` : "generated files are up to date");
