// Catches a rendering failure of one area of the window (canvas, side panel, runs) so the rest of
// the app and the open design stay usable: the area shows what failed and a button to try again.
// The document is untouched (and autosaved), so nothing is lost. Not error reporting to the host.
import { Component, type ErrorInfo, type ReactNode } from 'react';

interface Props {
  area: string;
  children: ReactNode;
}

interface State {
  error: Error | null;
}

export class ErrorBoundary extends Component<Props, State> {
  override state: State = { error: null };

  static getDerivedStateFromError(error: Error): State {
    return { error };
  }

  override componentDidCatch(error: Error, info: ErrorInfo): void {
    console.error(`Strata Studio: the ${this.props.area} failed to render`, error, info.componentStack);
  }

  override render(): ReactNode {
    if (!this.state.error) return this.props.children;
    return (
      <div className="issue error" role="alert">
        <p>
          The {this.props.area} failed to render: {this.state.error.message}. Your design is unchanged.
        </p>
        <button type="button" onClick={() => this.setState({ error: null })}>
          Try again
        </button>
      </div>
    );
  }
}
