// The XRM page's worker operation: XRM's environments and the accuracy table on the
// composited birds' features (www/public/xrm/, made by `latentlab xrm data` at build time).
import { xrmCompare } from 'latentlab';

export const xrmOps = {
  'xrm.compare': ({ train, validation, test, dim, options }, progress) =>
    xrmCompare(train, validation, test, dim, options, (done, total) => progress({ done, total })),
};
