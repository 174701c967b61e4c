// The error a job ends with when the backend knows whether the edge should retry it elsewhere.
export class JobError extends Error {
  readonly retryable: boolean;
  readonly code: string;
  constructor(message: string, retryable: boolean, code: string) {
    super(message);
    this.name = 'JobError';
    this.retryable = retryable;
    this.code = code;
  }
}
