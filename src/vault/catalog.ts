// Templates for APIs agents use: host, auth type and the conventional credential key, so
// `service add --template openai` needs no flags. Each entry is checked by the service schema in
// test/vault/catalog.test.ts; hosts are the public API hosts the vendors document.
import { type Auth } from "./service.schema.ts";

export interface CatalogEntry {
  readonly name: string;
  readonly title: string;
  readonly host: string;
  readonly auth: Auth;
  /** Where a person gets the key. */
  readonly obtain: string;
}

const bearer = (token: string): Auth => ({ type: "bearer", token });
const apiKey = (key: string, header: string, prefix = ""): Auth => ({ type: "api-key", key, header, prefix });
const basic = (username: string, password?: string): Auth => (password ? { type: "basic", username, password } : { type: "basic", username });

const aws = (): Auth => ({ type: "aws-sigv4", access_key_id: "AWS_ACCESS_KEY_ID", secret_key: "AWS_SECRET_ACCESS_KEY" });
const AWS_KEYS = "https://console.aws.amazon.com/iam/home#/security_credentials";

export const CATALOG: readonly CatalogEntry[] = [
  { name: "openai", title: "OpenAI", host: "api.openai.com", auth: bearer("OPENAI_API_KEY"), obtain: "https://platform.openai.com/api-keys" },
  { name: "anthropic", title: "Anthropic", host: "api.anthropic.com", auth: apiKey("ANTHROPIC_API_KEY", "x-api-key"), obtain: "https://console.anthropic.com/settings/keys" },
  { name: "github", title: "GitHub REST and GraphQL", host: "api.github.com", auth: bearer("GITHUB_TOKEN"), obtain: "https://github.com/settings/tokens" },
  { name: "gitlab", title: "GitLab", host: "gitlab.com/api/*", auth: apiKey("GITLAB_TOKEN", "PRIVATE-TOKEN"), obtain: "https://gitlab.com/-/user_settings/personal_access_tokens" },
  { name: "stripe", title: "Stripe", host: "api.stripe.com", auth: bearer("STRIPE_SECRET_KEY"), obtain: "https://dashboard.stripe.com/apikeys" },
  { name: "slack", title: "Slack Web API", host: "slack.com/api/*", auth: bearer("SLACK_BOT_TOKEN"), obtain: "https://api.slack.com/apps" },
  { name: "linear", title: "Linear", host: "api.linear.app", auth: apiKey("LINEAR_API_KEY", "Authorization"), obtain: "https://linear.app/settings/account/security" },
  { name: "notion", title: "Notion", host: "api.notion.com", auth: bearer("NOTION_API_KEY"), obtain: "https://www.notion.so/my-integrations" },
  { name: "sentry", title: "Sentry", host: "sentry.io/api/*", auth: bearer("SENTRY_AUTH_TOKEN"), obtain: "https://sentry.io/settings/account/api/auth-tokens/" },
  { name: "vercel", title: "Vercel", host: "api.vercel.com", auth: bearer("VERCEL_TOKEN"), obtain: "https://vercel.com/account/tokens" },
  { name: "cloudflare", title: "Cloudflare", host: "api.cloudflare.com", auth: bearer("CLOUDFLARE_API_TOKEN"), obtain: "https://dash.cloudflare.com/profile/api-tokens" },
  { name: "google-ai", title: "Google Gemini API", host: "generativelanguage.googleapis.com", auth: apiKey("GEMINI_API_KEY", "x-goog-api-key"), obtain: "https://aistudio.google.com/app/apikey" },
  { name: "mistral", title: "Mistral AI", host: "api.mistral.ai", auth: bearer("MISTRAL_API_KEY"), obtain: "https://console.mistral.ai/api-keys" },
  { name: "groq", title: "Groq", host: "api.groq.com", auth: bearer("GROQ_API_KEY"), obtain: "https://console.groq.com/keys" },
  { name: "openrouter", title: "OpenRouter", host: "openrouter.ai/api/*", auth: bearer("OPENROUTER_API_KEY"), obtain: "https://openrouter.ai/keys" },
  { name: "together", title: "Together AI", host: "api.together.xyz", auth: bearer("TOGETHER_API_KEY"), obtain: "https://api.together.xyz/settings/api-keys" },
  { name: "huggingface", title: "Hugging Face", host: "huggingface.co", auth: bearer("HF_TOKEN"), obtain: "https://huggingface.co/settings/tokens" },
  { name: "cohere", title: "Cohere", host: "api.cohere.com", auth: bearer("COHERE_API_KEY"), obtain: "https://dashboard.cohere.com/api-keys" },
  { name: "deepseek", title: "DeepSeek", host: "api.deepseek.com", auth: bearer("DEEPSEEK_API_KEY"), obtain: "https://platform.deepseek.com/api_keys" },
  { name: "perplexity", title: "Perplexity", host: "api.perplexity.ai", auth: bearer("PERPLEXITY_API_KEY"), obtain: "https://www.perplexity.ai/settings/api" },
  { name: "elevenlabs", title: "ElevenLabs", host: "api.elevenlabs.io", auth: apiKey("ELEVENLABS_API_KEY", "xi-api-key"), obtain: "https://elevenlabs.io/app/settings/api-keys" },
  { name: "replicate", title: "Replicate", host: "api.replicate.com", auth: bearer("REPLICATE_API_TOKEN"), obtain: "https://replicate.com/account/api-tokens" },
  { name: "pinecone", title: "Pinecone", host: "api.pinecone.io", auth: apiKey("PINECONE_API_KEY", "Api-Key"), obtain: "https://app.pinecone.io" },
  { name: "supabase", title: "Supabase Management API", host: "api.supabase.com", auth: bearer("SUPABASE_ACCESS_TOKEN"), obtain: "https://supabase.com/dashboard/account/tokens" },
  { name: "netlify", title: "Netlify", host: "api.netlify.com", auth: bearer("NETLIFY_AUTH_TOKEN"), obtain: "https://app.netlify.com/user/applications" },
  { name: "fly", title: "Fly.io Machines API", host: "api.machines.dev", auth: bearer("FLY_API_TOKEN"), obtain: "https://fly.io/user/personal_access_tokens" },
  { name: "render", title: "Render", host: "api.render.com", auth: bearer("RENDER_API_KEY"), obtain: "https://dashboard.render.com/u/settings#api-keys" },
  { name: "digitalocean", title: "DigitalOcean", host: "api.digitalocean.com", auth: bearer("DIGITALOCEAN_TOKEN"), obtain: "https://cloud.digitalocean.com/account/api/tokens" },
  {
    name: "datadog",
    title: "Datadog",
    host: "api.datadoghq.com",
    auth: { type: "custom", headers: { "DD-API-KEY": "{{ DD_API_KEY }}", "DD-APPLICATION-KEY": "{{ DD_APP_KEY }}" } },
    obtain: "https://app.datadoghq.com/organization-settings/api-keys",
  },
  {
    name: "pagerduty",
    title: "PagerDuty",
    host: "api.pagerduty.com",
    auth: apiKey("PAGERDUTY_API_KEY", "Authorization", "Token token="),
    obtain: "https://support.pagerduty.com/docs/api-access-keys",
  },
  { name: "twilio", title: "Twilio", host: "api.twilio.com", auth: basic("TWILIO_ACCOUNT_SID", "TWILIO_AUTH_TOKEN"), obtain: "https://console.twilio.com" },
  { name: "sendgrid", title: "SendGrid", host: "api.sendgrid.com", auth: bearer("SENDGRID_API_KEY"), obtain: "https://app.sendgrid.com/settings/api_keys" },
  { name: "resend", title: "Resend", host: "api.resend.com", auth: bearer("RESEND_API_KEY"), obtain: "https://resend.com/api-keys" },
  { name: "mailgun", title: "Mailgun", host: "api.mailgun.net", auth: basic("MAILGUN_USER", "MAILGUN_API_KEY"), obtain: "https://app.mailgun.com/settings/api_security" },
  {
    name: "jira",
    title: "Jira Cloud (Atlassian)",
    host: "*.atlassian.net",
    auth: basic("ATLASSIAN_EMAIL", "ATLASSIAN_API_TOKEN"),
    obtain: "https://id.atlassian.com/manage-profile/security/api-tokens",
  },
  { name: "airtable", title: "Airtable", host: "api.airtable.com", auth: bearer("AIRTABLE_TOKEN"), obtain: "https://airtable.com/create/tokens" },
  { name: "hubspot", title: "HubSpot", host: "api.hubapi.com", auth: bearer("HUBSPOT_TOKEN"), obtain: "https://app.hubspot.com/private-apps" },
  {
    name: "shopify",
    title: "Shopify Admin API",
    host: "*.myshopify.com",
    auth: apiKey("SHOPIFY_ACCESS_TOKEN", "X-Shopify-Access-Token"),
    obtain: "https://admin.shopify.com/settings/apps/development",
  },
  { name: "figma", title: "Figma", host: "api.figma.com", auth: apiKey("FIGMA_TOKEN", "X-Figma-Token"), obtain: "https://www.figma.com/developers/api#access-tokens" },
  { name: "discord", title: "Discord Bot API", host: "discord.com/api/*", auth: apiKey("DISCORD_BOT_TOKEN", "Authorization", "Bot "), obtain: "https://discord.com/developers/applications" },
  { name: "brave-search", title: "Brave Search API", host: "api.search.brave.com", auth: apiKey("BRAVE_API_KEY", "X-Subscription-Token"), obtain: "https://api-dashboard.search.brave.com/app/keys" },
  { name: "npm", title: "npm registry (publish)", host: "registry.npmjs.org", auth: bearer("NPM_TOKEN"), obtain: "https://www.npmjs.com/settings/~/tokens" },
  { name: "docker-hub", title: "Docker Hub API", host: "hub.docker.com", auth: bearer("DOCKER_HUB_TOKEN"), obtain: "https://app.docker.com/settings/personal-access-tokens" },
  {
    name: "google-maps",
    title: "Google Maps Platform",
    host: "maps.googleapis.com",
    auth: { type: "query", param: "key", key: "GOOGLE_MAPS_API_KEY" },
    obtain: "https://console.cloud.google.com/google/maps-apis/credentials",
  },
  // AWS: the proxy signs (SigV4) with the real keys; region and signing name come from the host.
  // The hosts are the SDKs' and CLI's defaults for us-east-1 (regional, virtual-hosted buckets);
  // another region is `--host '*.s3.eu-west-1.amazonaws.com'`, `--host sts.eu-west-1.amazonaws.com`.
  { name: "aws-s3", title: "Amazon S3 (virtual-hosted buckets)", host: "*.s3.us-east-1.amazonaws.com", auth: aws(), obtain: AWS_KEYS },
  { name: "aws-sts", title: "AWS STS", host: "sts.us-east-1.amazonaws.com", auth: aws(), obtain: AWS_KEYS },
  { name: "aws-bedrock", title: "Amazon Bedrock runtime", host: "bedrock-runtime.us-east-1.amazonaws.com", auth: aws(), obtain: AWS_KEYS },
  { name: "aws-lambda", title: "AWS Lambda", host: "lambda.us-east-1.amazonaws.com", auth: aws(), obtain: AWS_KEYS },
];

export function findTemplate(name: string): CatalogEntry | undefined {
  return CATALOG.find((entry) => entry.name === name.toLowerCase());
}
