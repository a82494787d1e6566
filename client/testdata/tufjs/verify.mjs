// An independent TUF client: tuf-js refreshes the image repository served by sotad from a trusted
// root (root chain, timestamp, snapshot, targets, signatures, expiry, consistent snapshots) and
// downloads one target, whose bytes tuf-js checks against the signed length and hashes.
//
//   node verify.mjs METADATA_URL ROOT_JSON WORK_DIR TARGET_NAME
//
// It prints {"targets": [names...], "file": "<downloaded path>", "length": n} and exits 0, or prints the
// error and exits 1.
import { Updater } from 'tuf-js';
import fs from 'node:fs';
import path from 'node:path';

const [metadataBaseUrl, rootFile, work, targetName] = process.argv.slice(2);
const metadataDir = path.join(work, 'metadata');
const targetDir = path.join(work, 'targets');
fs.mkdirSync(metadataDir, { recursive: true });
fs.mkdirSync(targetDir, { recursive: true });
if (!fs.existsSync(path.join(metadataDir, 'root.json'))) {
  fs.copyFileSync(rootFile, path.join(metadataDir, 'root.json'));
}
try {
  const updater = new Updater({ metadataBaseUrl, metadataDir, targetDir, targetBaseUrl: metadataBaseUrl + '/targets' });
  await updater.refresh();
  const info = await updater.getTargetInfo(targetName);
  if (!info) {
    throw new Error(`target ${targetName} is not in the repository`);
  }
  const file = await updater.downloadTarget(info, path.join(targetDir, 'download'));
  const targets = JSON.parse(fs.readFileSync(path.join(metadataDir, 'targets.json'))).signed.targets;
  console.log(JSON.stringify({ targets: Object.keys(targets).sort(), file, length: fs.statSync(file).size }));
} catch (e) {
  console.log(`tuf-js: ${e.name}: ${e.message}`);
  process.exit(1);
}
