// The package's public entry: `import { UvitClient } from 'uvit-client'`.
export { UvitClient, TERMINAL, describeProblem } from './client.ts';
export type { ClientOptions, CreateVideoInput, CreateImageInput, ImageGeneration, ListInput, VideoEvent, Video, VideoList, Problem } from './client.ts';
export { VideoPage, PagePromise } from './pagination.ts';
export {
  UvitError, UvitConnectionError, UvitTimeoutError, UvitResponseError, UvitApiError, BadRequestError, AuthenticationError,
  PermissionDeniedError, NotFoundError, ConflictError, UnprocessableEntityError, RateLimitError, InternalServerError,
} from './errors.ts';
