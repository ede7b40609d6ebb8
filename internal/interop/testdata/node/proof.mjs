// Makes one DPoP proof with panva's dpop package, an implementation that
// knows nothing of portvakt, and prints it with the key's RFC 7638
// thumbprint as that package computes it.
//
//   node proof.mjs ALG HTU HTM [NONCE]
import { generateKeyPair, generateProof, calculateThumbprint } from 'dpop';

const [alg, htu, htm, nonce] = process.argv.slice(2);
const keypair = await generateKeyPair(alg);
const proof = await generateProof(keypair, htu, htm, nonce || undefined);
const jkt = await calculateThumbprint(keypair.publicKey);
process.stdout.write(JSON.stringify({ proof, jkt }) + '\n');
