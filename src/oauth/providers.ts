// Provider presets for `oauth connect --provider P` and `oauth paste --provider P`: endpoints, how
// the client authenticates at the token endpoint, suggested scopes, and the extra authorization
// parameters a provider needs before it hands out a refresh token. Any provider not listed works
// with --authorization-url and --token-url.
import { AgentVaultError } from "../shared/errors.ts";
import { type TokenAuthMethod } from "../vault/oauth-record.ts";
import { didYouMean } from "../shared/suggest.ts";

export interface ProviderPreset {
  readonly name: string;
  readonly title: string;
  readonly authorization_url: string;
  readonly token_url: string;
  readonly token_auth_method: TokenAuthMethod;
  readonly scopes: string;
  /** Sent with the authorization request, e.g. Google's access_type=offline. */
  readonly extra: Readonly<Record<string, string>>;
  /** Where to register the OAuth app (shown in errors and `oauth providers`). */
  readonly register: string;
}

const preset = (p: Omit<ProviderPreset, "extra"> & { extra?: Record<string, string> }): ProviderPreset => ({ extra: {}, ...p });

export const PROVIDERS: readonly ProviderPreset[] = [
  preset({
    name: "github",
    title: "GitHub",
    authorization_url: "https://github.com/login/oauth/authorize",
    token_url: "https://github.com/login/oauth/access_token",
    token_auth_method: "client_secret_post",
    scopes: "repo read:user",
    register: "https://github.com/settings/developers",
  }),
  preset({
    name: "google",
    title: "Google",
    authorization_url: "https://accounts.google.com/o/oauth2/v2/auth",
    token_url: "https://oauth2.googleapis.com/token",
    token_auth_method: "client_secret_post",
    scopes: "openid email https://www.googleapis.com/auth/drive.readonly",
    extra: { access_type: "offline", prompt: "consent" },
    register: "https://console.cloud.google.com/apis/credentials",
  }),
  preset({
    name: "slack",
    title: "Slack",
    authorization_url: "https://slack.com/oauth/v2/authorize",
    token_url: "https://slack.com/api/oauth.v2.access",
    token_auth_method: "client_secret_post",
    scopes: "channels:read chat:write",
    register: "https://api.slack.com/apps",
  }),
  preset({
    name: "microsoft",
    title: "Microsoft",
    authorization_url: "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
    token_url: "https://login.microsoftonline.com/common/oauth2/v2.0/token",
    token_auth_method: "client_secret_post",
    scopes: "offline_access User.Read",
    register: "https://entra.microsoft.com (App registrations)",
  }),
  preset({
    name: "gitlab",
    title: "GitLab",
    authorization_url: "https://gitlab.com/oauth/authorize",
    token_url: "https://gitlab.com/oauth/token",
    token_auth_method: "client_secret_post",
    scopes: "read_api read_user",
    register: "https://gitlab.com/-/user_settings/applications",
  }),
  preset({
    name: "linear",
    title: "Linear",
    authorization_url: "https://linear.app/oauth/authorize",
    token_url: "https://api.linear.app/oauth/token",
    token_auth_method: "client_secret_post",
    scopes: "read write",
    register: "https://linear.app/settings/api/applications",
  }),
  preset({
    name: "notion",
    title: "Notion",
    authorization_url: "https://api.notion.com/v1/oauth/authorize",
    token_url: "https://api.notion.com/v1/oauth/token",
    token_auth_method: "client_secret_basic",
    scopes: "",
    extra: { owner: "user" },
    register: "https://www.notion.so/my-integrations",
  }),
  preset({
    name: "atlassian",
    title: "Atlassian (Jira, Confluence)",
    authorization_url: "https://auth.atlassian.com/authorize",
    token_url: "https://auth.atlassian.com/oauth/token",
    token_auth_method: "client_secret_post",
    scopes: "read:jira-work read:jira-user offline_access",
    extra: { audience: "api.atlassian.com", prompt: "consent" },
    register: "https://developer.atlassian.com/console/myapps/",
  }),
  preset({
    name: "dropbox",
    title: "Dropbox",
    authorization_url: "https://www.dropbox.com/oauth2/authorize",
    token_url: "https://api.dropboxapi.com/oauth2/token",
    token_auth_method: "client_secret_post",
    scopes: "files.metadata.read files.content.read",
    extra: { token_access_type: "offline" },
    register: "https://www.dropbox.com/developers/apps",
  }),
  preset({
    name: "zoom",
    title: "Zoom",
    authorization_url: "https://zoom.us/oauth/authorize",
    token_url: "https://zoom.us/oauth/token",
    token_auth_method: "client_secret_basic",
    scopes: "meeting:read",
    register: "https://marketplace.zoom.us/develop/create",
  }),
  preset({
    name: "discord",
    title: "Discord",
    authorization_url: "https://discord.com/oauth2/authorize",
    token_url: "https://discord.com/api/oauth2/token",
    token_auth_method: "client_secret_post",
    scopes: "identify guilds",
    register: "https://discord.com/developers/applications",
  }),
  preset({
    name: "spotify",
    title: "Spotify",
    authorization_url: "https://accounts.spotify.com/authorize",
    token_url: "https://accounts.spotify.com/api/token",
    token_auth_method: "client_secret_basic",
    scopes: "user-read-email playlist-read-private",
    register: "https://developer.spotify.com/dashboard",
  }),
  preset({
    name: "salesforce",
    title: "Salesforce",
    authorization_url: "https://login.salesforce.com/services/oauth2/authorize",
    token_url: "https://login.salesforce.com/services/oauth2/token",
    token_auth_method: "client_secret_post",
    scopes: "api refresh_token",
    register: "Setup > App Manager > New Connected App",
  }),
  preset({
    name: "hubspot",
    title: "HubSpot",
    authorization_url: "https://app.hubspot.com/oauth/authorize",
    token_url: "https://api.hubapi.com/oauth/v1/token",
    token_auth_method: "client_secret_post",
    scopes: "crm.objects.contacts.read",
    register: "https://developers.hubspot.com",
  }),
  preset({
    name: "figma",
    title: "Figma",
    authorization_url: "https://www.figma.com/oauth",
    token_url: "https://api.figma.com/v1/oauth/token",
    token_auth_method: "client_secret_basic",
    scopes: "file_content:read",
    register: "https://www.figma.com/developers/apps",
  }),
  preset({
    name: "asana",
    title: "Asana",
    authorization_url: "https://app.asana.com/-/oauth_authorize",
    token_url: "https://app.asana.com/-/oauth_token",
    token_auth_method: "client_secret_post",
    scopes: "default",
    register: "https://app.asana.com/0/my-apps",
  }),
];

export function findProvider(name: string): ProviderPreset {
  const found = PROVIDERS.find((p) => p.name === name.toLowerCase());
  if (!found) {
    throw new AgentVaultError(
      "invalid_argument",
      `unknown provider "${name.slice(0, 60)}"${didYouMean(
        name,
        PROVIDERS.map((p) => p.name),
      )}`,
      {
        hint: `choose one of ${PROVIDERS.map((p) => p.name).join(", ")}, or pass --authorization-url and --token-url`,
      },
    );
  }
  return found;
}
