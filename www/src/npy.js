// Reads the .npy arrays the CLI writes (little-endian float32 or int64, C order): enough for
// the XRM page's features and labels, with a clear error for anything else.

const DTYPES = {
  '<f4': (buffer, offset, count) => new Float32Array(buffer.slice(offset, offset + 4 * count)),
  '<i8': (buffer, offset, count) => {
    const wide = new BigInt64Array(buffer.slice(offset, offset + 8 * count));
    return Int32Array.from(wide, (v) => Number(v));
  },
};

/** Parses an .npy file's bytes into `{ data, shape }`; `name` labels errors. */
export function parseNpy(buffer, name = 'array') {
  const bytes = new Uint8Array(buffer);
  const magic = String.fromCharCode(...bytes.slice(1, 6));
  if (bytes[0] !== 0x93 || magic !== 'NUMPY') throw new Error(`${name}: not an .npy file`);
  const major = bytes[6];
  const view = new DataView(buffer);
  const headerLength = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const start = major === 1 ? 10 : 12;
  const header = new TextDecoder('latin1').decode(bytes.slice(start, start + headerLength));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1];
  const fortran = /'fortran_order':\s*(True|False)/.exec(header)?.[1];
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1];
  if (!descr || !fortran || shapeText === undefined) throw new Error(`${name}: unreadable .npy header ${header}`);
  if (fortran === 'True') throw new Error(`${name}: Fortran-ordered arrays are not supported`);
  const read = DTYPES[descr];
  if (!read) throw new Error(`${name}: dtype ${descr} is not supported (expected ${Object.keys(DTYPES).join(' or ')})`);
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const count = shape.reduce((a, b) => a * b, 1);
  return { data: read(buffer, start + headerLength, count), shape };
}
