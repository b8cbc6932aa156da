// The error type for problems a user can fix (a file, flag, key or topic); the CLI prints these as one line.
export class UserError extends Error {
  override name = 'UserError';
}
